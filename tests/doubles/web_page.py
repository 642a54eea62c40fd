"""A web page whose sentence runs across inline markup (``…村卫生室<span …>42</span>所``), as the
policy pages of the corpus are written: its evidence keeps the tags, what a reader is shown does not."""

WEB_PAGE = ('<html><body><div class="TRS_Editor"><p>今年以来，全县新建标准化村卫生室'
            '<span style="font-size: 10.5pt; line-height: 175%">42</span>所，'
            '乡镇卫生院服务能力明显提升。</p><p>下一步，我们将加快推进县医院新院区建设，确保年内投入使用。</p>'
            '</div></body></html>')
