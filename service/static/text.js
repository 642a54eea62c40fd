// Shared by the digest page (app.js) and the tracking page (track.js).
"use strict";

// An evidence slice of web-page source as a reader sees it: a sentence that runs across inline
// markup keeps its tags in the evidence (a slice of the input); tags dropped, entities decoded
// (as service.ground.visible_text). A <textarea> decodes without running anything.
function visibleText(evidence) {
  if (!/[<&]/.test(evidence)) return evidence;
  const box = document.createElement("textarea");
  box.innerHTML = evidence.replace(/<[^<>]*>/g, "");
  return box.value;
}
