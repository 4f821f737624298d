"""Side by side with TRL's TextEnvironment + PPOTrainer (trl 0.11.4, the seed's stack).

    python bench/vs_trl.py [--batch-sizes 16 64 256] [--repeats 3] [--venv PATH] [--threads 1]
    python bench/vs_trl.py --setup-only          # build (or check) the TRL virtualenv and stop

What it does, in order:

1. Creates or reuses an isolated virtualenv for the TRL stack (default
   ``~/.cache/toolrl/venv-trl-0.11.4``): trl==0.11.4, transformers==4.46.3, rich and
   torch==2.13.0 CPU build (the local wheel through ``pip --no-index``, else PyTorch's CPU
   index; never a CUDA build). A venv is reused when its versions check out.
2. Saves our tiny calculator model (the default recipe, built or taken from the cache) once
   with ``save_pretrained`` and checks that transformers 4.46.3 in that venv loads it to the
   same tokens and the same logits.
3. Starts ``bench/trl_side.py`` in the venv (a JSON-lines server, so its imports are paid
   once) and measures, alternating ours / TRL (A B A B ...), at every batch size:
   - rollout: the 256 held-out calculator queries in batches of B, a full multi-turn
     rollout with the calculator (in process on both sides), temperature 1, the same max new
     tokens and max turns: episodes/s and generated (model) tokens/s;
   - PPO: seconds per training step (rollout of B episodes + update) at equal batch and
     minibatch sizes, PPO epochs, learning rate, KL coefficient and grad clip.
4. A correctness comparison: scripted episodes run through both environments; the script
   shows whether the masks cover the same model tokens and, concretely, TRL's defects
   (reward read from the tool's text, the broken ``max_length`` check, the lost unknown-tool
   message, no truncation flag).
5. Prints a table (medians, ratio ours/TRL) and appends it with the date and machine to
   ``bench/RESULTS.md`` (``--no-append`` to skip).

The benchmark is not part of CI; tests/test_bench_vs_trl.py checks argument handling only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NUM_QUERIES = 256  # the calculator task's held-out set
PINS = {"trl": "0.11.4", "transformers": "4.46.3", "torch": "2.13.0"}
DEFAULT_VENV = Path.home() / ".cache" / "toolrl" / f"venv-trl-{PINS['trl']}"
DEFAULT_WORKDIR = Path.home() / ".cache" / "toolrl" / "bench-vs-trl"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


# ---------------------------------------------------------------- arguments


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/vs_trl.py",
        description="Rollout and PPO speed, and episode correctness, of toolrl against TRL 0.11.4's "
        "TextEnvironment + PPOTrainer on the same tiny calculator model.",
    )
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[16, 64, 256], metavar="B",
                        help=f"episodes per rollout batch / PPO step; each divides {NUM_QUERIES} and is a "
                        "multiple of --minibatch-size (default: 16 64 256)")
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="timed repetitions per side, batch size and measurement, after one untimed warm-up (default: 3)")
    parser.add_argument("--minibatch-size", type=positive_int, default=16,
                        help="PPO minibatch size on both sides (default: 16, conf/algo/ppo.yaml)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=32, help="tokens per model turn (default: 32)")
    parser.add_argument("--max-turns", type=positive_int, default=2, help="model turns per episode (default: 2)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads on each side (default: 1; the two sides never run at once)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help=f"virtualenv for the TRL stack, created when missing (default: {DEFAULT_VENV})")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help=f"where the shared model copy is saved (default: {DEFAULT_WORKDIR})")
    parser.add_argument("--model", type=Path, default=None,
                        help="a Hugging Face causal-LM folder to compare with instead of the default tiny calculator "
                        "model (protocol tokens are added when missing)")
    parser.add_argument("--note", default="", help="a sentence added to the RESULTS.md entry (e.g. that the machine was shared)")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "toolrl"),
                        help="tiny-model cache (default: ~/.cache/toolrl, the CLI's)")
    parser.add_argument("--skip-ppo", action="store_true", help="measure rollouts only")
    parser.add_argument("--skip-correctness", action="store_true", help="skip the scripted-episode comparison")
    parser.add_argument("--setup-only", action="store_true", help="create or check the TRL virtualenv, then stop")
    parser.add_argument("--no-append", action="store_true", help="do not append the results to bench/RESULTS.md")
    parser.add_argument("--seed", type=int, default=0, help="sampling and PPO seed on both sides (default: 0)")
    args = parser.parse_args(argv)
    bad = [b for b in args.batch_sizes if NUM_QUERIES % b or b % args.minibatch_size]
    if bad:
        parser.error(f"--batch-sizes: {', '.join(map(str, bad))} must divide {NUM_QUERIES} (the number of calculator "
                     f"queries) and be a multiple of --minibatch-size {args.minibatch_size} (TRL's PPOTrainer requires it); "
                     f"e.g. 16 32 64 128 256")
    if len(set(args.batch_sizes)) != len(args.batch_sizes):
        parser.error("--batch-sizes: each batch size once")
    return args


# ---------------------------------------------------------------- the TRL virtualenv


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_versions(venv: Path) -> dict[str, str] | None:
    """The versions of the pinned packages in ``venv``, or None when it cannot import them."""
    py = venv_python(venv)
    if not py.exists():
        return None
    probe = ("import json, trl, transformers, torch, rich; "
             "print(json.dumps({'trl': trl.__version__, 'transformers': transformers.__version__, "
             "'torch': torch.__version__, 'cuda': torch.version.cuda}))")
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def venv_ok(versions: dict[str, str] | None) -> bool:
    return bool(versions) and versions["trl"] == PINS["trl"] and versions["transformers"] == PINS["transformers"] \
        and versions["torch"].split("+")[0] == PINS["torch"] and versions.get("cuda") is None


def ensure_venv(venv: Path) -> dict[str, str]:
    """Create the TRL virtualenv (or reuse a good one); return its package versions."""
    versions = venv_versions(venv)
    if venv_ok(versions):
        print(f"[venv] reusing {venv}: {versions}", flush=True)
        return versions  # type: ignore[return-value]
    print(f"[venv] creating {venv} (found: {versions or 'nothing usable'})", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    py = str(venv_python(venv))
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    torch_pin = f"torch=={PINS['torch']}"
    # CPU torch first, without its dependencies: the local wheel (pip's configured find-links,
    # as scripts/install.sh finds it), else PyTorch's CPU index. Never PyPI's CUDA build.
    local = subprocess.run([*pip, "--no-index", "--no-deps", torch_pin])
    if local.returncode != 0:
        print("[venv] no local torch wheel; using the PyTorch CPU index", flush=True)
        subprocess.run([*pip, "--no-deps", torch_pin, "--index-url", TORCH_CPU_INDEX], check=True)
    # Then torch's own dependencies and the TRL stack, with torch held at the installed CPU
    # build (a constraint) so that no resolver step can swap it for another build.
    constraints = venv / "constraints.txt"
    constraints.write_text(f"{torch_pin}\n")
    subprocess.run([*pip, "-c", str(constraints), torch_pin, f"trl=={PINS['trl']}",
                    f"transformers=={PINS['transformers']}", "rich"], check=True)
    versions = venv_versions(venv)
    if not venv_ok(versions):
        raise SystemExit(f"[venv] {venv} does not hold the pinned stack after install: {versions}; pins {PINS}")
    print(f"[venv] ready: {versions}", flush=True)
    return versions  # type: ignore[return-value]


# ---------------------------------------------------------------- the shared model


def source_model(args: argparse.Namespace) -> Path:
    """``--model``, or the model ``python -m orchestrator task=calculator`` trains: the tiny model of
    conf/model/tiny.yaml at seed 0 (built once, then cached, exactly as the CLI does)."""
    if args.model:
        return args.model.expanduser()
    import hydra.utils
    from hydra import compose, initialize_config_dir

    from orchestrator.config import CONF_DIR
    from orchestrator.models.loading import prepare_model

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["task=calculator", "model=tiny", "seed=0"])
    print(f"[model] the CLI's default tiny model ({dict(cfg.model.tiny)}); built if not cached", flush=True)
    return Path(prepare_model(cfg.model, hydra.utils.instantiate(cfg.task.spec), args.cache_dir))


def save_shared_model(src: Path, dst: Path) -> Path:
    """Load ours (protocol tokens added if missing), save it once with save_pretrained, and make
    the tokenizer config readable by transformers 4.46.3 too. Both sides load ``dst``."""
    from orchestrator.models.loading import load_causal_lm

    tokenizer, model = load_causal_lm(str(src))
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    config_path = dst / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    # transformers 5 writes its own class name and a list of extra special tokens; 4.46.3
    # knows neither. The tokenizer itself (tokenizer.json) is the same file for both.
    if config.get("tokenizer_class") not in (None, "PreTrainedTokenizerFast", "GPT2TokenizerFast", "LlamaTokenizerFast"):
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = config.pop("extra_special_tokens", None)
    if isinstance(extra, list):
        config["additional_special_tokens"] = extra
    elif isinstance(extra, dict):
        config["extra_special_tokens"] = extra
    config_path.write_text(json.dumps(config, indent=2))
    model_config_path = dst / "config.json"
    model_config = json.loads(model_config_path.read_text())
    if "dtype" in model_config and "torch_dtype" not in model_config:
        model_config["torch_dtype"] = model_config["dtype"]  # the key 4.46.3 reads
        model_config_path.write_text(json.dumps(model_config, indent=2))
    return dst


# ---------------------------------------------------------------- our side (in process)

MAX_LENGTH = 96  # conf/task/calculator.yaml env.max_length
MAX_TOOL_RESPONSE = 400


def ppo_settings(args: argparse.Namespace, batch_size: int) -> dict[str, Any]:
    """One set of PPO settings for both sides: old TRL defaults, the tiny model's lr and KL."""
    return {"batch_size": batch_size, "minibatch_size": args.minibatch_size, "ppo_epochs": 4, "lr": 1e-4,
            "init_kl_coef": 0.02, "target_kl": 6.0, "kl_horizon": 10000, "gamma": 1.0, "lam": 0.95,
            "cliprange": 0.2, "cliprange_value": 0.2, "vf_coef": 0.1, "max_grad_norm": 1.0, "seed": args.seed,
            "max_new_tokens": args.max_new_tokens, "max_turns": args.max_turns}


class OurSide:
    def __init__(self, model_dir: Path, args: argparse.Namespace) -> None:
        import torch

        from orchestrator.models.loading import load_causal_lm
        from orchestrator.tools.local import LocalRouter
        from tasks.calculator import CalculatorTask

        torch.set_num_threads(args.threads)
        self.torch = torch
        self.args = args
        self.model_dir = model_dir
        self.task = CalculatorTask()
        self.tokenizer, self.lm = load_causal_lm(str(model_dir))
        self.lm.eval()
        self.router = LocalRouter.from_configs(self.task.tools())

    def env(self, max_length: int = MAX_LENGTH, lean: bool = True) -> Any:
        from orchestrator.config.schema import EnvConfig
        from orchestrator.rollout.environment import TextEnvironment

        config = EnvConfig(max_turns=self.args.max_turns, max_new_tokens=self.args.max_new_tokens,
                           max_tool_response=MAX_TOOL_RESPONSE, max_length=max_length)
        return TextEnvironment(self.tokenizer, self.router, self.task.reward, config, lean_decoder=lean)

    def rollout(self, prompts: list[str], metas: list[dict[str, Any]], batch_size: int, seed: int,
                lean: bool = True) -> dict[str, Any]:
        """``lean=False``: the same sampler through the model's own transformers forward."""
        from orchestrator.rollout.sampler import SamplingParams

        env = self.env(lean=lean)
        generator = self.torch.Generator().manual_seed(seed)
        episodes = []
        start = time.perf_counter()
        for i in range(0, len(prompts), batch_size):
            episodes += env.rollout(self.lm, prompts[i:i + batch_size], metas[i:i + batch_size], SamplingParams(1.0), generator)
        seconds = time.perf_counter() - start
        n = len(episodes)
        return {"seconds": seconds, "episodes": n, "model_tokens": sum(ep.num_model_tokens for ep in episodes),
                "reward_mean": sum(ep.reward for ep in episodes) / n, "calls_per_episode": sum(ep.num_calls for ep in episodes) / n,
                "generate_s": env.timings.generate_s, "tools_s": env.timings.tools_s}

    def ppo_setup(self, settings: dict[str, Any]) -> None:
        import copy

        from orchestrator.algos import AlgoSetup
        from orchestrator.algos.ppo import PPO, PPOConfig
        from orchestrator.models.loading import load_causal_lm

        torch = self.torch
        torch.manual_seed(settings["seed"])
        tokenizer, lm = load_causal_lm(str(self.model_dir))
        ref = copy.deepcopy(lm)
        config = PPOConfig(name="ppo", lr=settings["lr"], anneal_lr=False, ppo_epochs=settings["ppo_epochs"],
                           minibatch_size=settings["minibatch_size"], init_kl_coef=settings["init_kl_coef"],
                           adaptive_kl=True, target_kl=settings["target_kl"], kl_horizon=settings["kl_horizon"],
                           gamma=settings["gamma"], lam=settings["lam"], cliprange=settings["cliprange"],
                           cliprange_value=settings["cliprange_value"], vf_coef=settings["vf_coef"],
                           max_grad_norm=settings["max_grad_norm"], whiten_advantages=True)
        self.ppo_lm = lm
        setup = AlgoSetup(lm=lm, reference=lambda: ref, pad_id=tokenizer.pad_token_id, device=torch.device("cpu"), rank=0,
                          world_size=1, minibatch_size=settings["minibatch_size"], max_steps=10**6,
                          max_length=MAX_LENGTH, seed=settings["seed"], wrap=lambda module: module)
        self.learner = PPO(config, setup)
        self.ppo_step_index = 0
        self.ppo_env = self.env()
        self.ppo_generator = torch.Generator().manual_seed(settings["seed"])

    def ppo_step(self, prompts: list[str], metas: list[dict[str, Any]]) -> dict[str, Any]:
        from orchestrator.rollout.sampler import SamplingParams

        start = time.perf_counter()
        self.ppo_lm.eval()
        episodes = self.ppo_env.rollout(self.ppo_lm, prompts, metas, SamplingParams(1.0), self.ppo_generator)
        mid = time.perf_counter()
        stats = self.learner.update(self.learner.prepare(episodes), self.ppo_step_index)
        self.ppo_step_index += 1
        end = time.perf_counter()
        return {"seconds": end - start, "rollout_s": mid - start, "update_s": end - mid,
                "reward_mean": sum(ep.reward for ep in episodes) / len(episodes), "kl": stats["objective/kl"]}


# ---------------------------------------------------------------- the TRL side (a subprocess in the venv)


class TrlClient:
    """``bench/trl_side.py`` in the TRL venv, one JSON command per line; it times itself."""

    def __init__(self, venv: Path, model_dir: Path, threads: int, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   OMP_NUM_THREADS=str(threads), PYTHONNOUSERSITE="1", WANDB_MODE="disabled")
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [str(venv_python(venv)), "-u", str(REPO / "bench" / "trl_side.py"), "--model", str(model_dir),
             "--repo", str(REPO), "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd=str(REPO),
        )
        self._read()  # {"ready": true}

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                answer = json.loads(line[2:])
                if "error" in answer:
                    raise RuntimeError(f"TRL side failed: {answer['error']}\n{answer.get('traceback', '')}")
                return answer
        self.log.flush()
        tail = self.log_path.read_text()[-3000:]
        raise RuntimeError(f"TRL side exited (code {self.proc.wait()}); its log {self.log_path} ends:\n{tail}")

    def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("quit")
            except (RuntimeError, BrokenPipeError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# ---------------------------------------------------------------- loading check


def check_same_model(ours: OurSide, trl: TrlClient, prompts: list[str]) -> dict[str, Any]:
    """Both sides tokenize the 256 prompts alike and score the same ids to the same logits."""
    import torch

    from orchestrator.rollout.protocol import PROTOCOL_TOKENS

    tok = ours.tokenizer
    our_ids = tok(prompts, add_special_tokens=False)["input_ids"]
    probe = [our_ids[i] + tok(f"<request><Calculator>{i}*3<call>", add_special_tokens=False)["input_ids"] for i in range(4)]
    special = list(PROTOCOL_TOKENS) + ["<Calculator>", tok.eos_token, tok.pad_token]
    answer = trl.call("check", prompts=prompts, sequences=probe, special_tokens=special)
    with torch.no_grad():
        ours_logits = [ours.lm(input_ids=torch.tensor([s])).logits[0, -1] for s in probe]
    diff = max(float((a - torch.tensor(b)).abs().max()) for a, b in zip(ours_logits, answer["last_logits"]))
    same_prompts = sum(a == b for a, b in zip(our_ids, answer["prompt_ids"]))
    our_special = {t: tok.convert_tokens_to_ids(t) for t in special}
    result = {"logits_max_abs_diff": diff, "prompts_same_ids": same_prompts, "prompts": len(prompts),
              "special_ids_same": our_special == answer["special_ids"], "trl_architecture": answer["architecture"],
              "decoded_same": answer["decoded"] == [tok.decode(s) for s in probe]}
    problems = []
    if diff > 1e-4:
        problems.append(f"logits differ by up to {diff:.2e}")
    if not result["special_ids_same"]:
        problems.append(f"special token ids differ: ours {our_special}, TRL's {answer['special_ids']}")
    if same_prompts != len(prompts):
        problems.append(f"only {same_prompts}/{len(prompts)} prompts tokenize alike")
    if problems:
        raise SystemExit("[check] transformers 4.46.3 does not load the saved model as ours does: " + "; ".join(problems))
    print(f"[check] transformers {answer['transformers']} loads the saved model ({answer['architecture']}): "
          f"same ids for {same_prompts}/{len(prompts)} prompts and the protocol tokens, logits within {diff:.1e}", flush=True)
    return result


# ---------------------------------------------------------------- speed


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(args: argparse.Namespace, ours: OurSide, trl: TrlClient, prompts: list[str], metas: list[dict[str, Any]],
            answers: list[float]) -> dict[int, dict[str, Any]]:
    """Rollout and PPO at every batch size, ours and TRL alternating (A B A B), one warm-up each."""
    results: dict[int, dict[str, Any]] = {}
    for bs in args.batch_sizes:
        rows: dict[str, list[dict[str, Any]]] = {"ours_rollout": [], "trl_rollout": [], "ours_hf_rollout": [],
                                                 "ours_ppo": [], "trl_ppo": []}
        common = {"max_new_tokens": args.max_new_tokens, "max_turns": args.max_turns}
        for r in range(args.repeats + 1):
            warm = r == 0  # the warm-up covers one batch only and is not counted
            n = bs if warm else NUM_QUERIES
            a = ours.rollout(prompts[:n], metas[:n], bs, args.seed + r)
            b = trl.call("rollout", prompts=prompts[:n], answers=answers[:n], batch_size=bs, seed=args.seed + r, **common)
            c = ours.rollout(prompts[:n], metas[:n], bs, args.seed + r, lean=False)
            if not warm:
                rows["ours_rollout"].append(a)
                rows["trl_rollout"].append(b)
                rows["ours_hf_rollout"].append(c)
                print(f"[rollout B={bs} #{r}] ours {a['episodes'] / a['seconds']:.1f} ep/s, TRL {b['episodes'] / b['seconds']:.1f} ep/s, "
                      f"ours without the lean decoder {c['episodes'] / c['seconds']:.1f} ep/s "
                      f"(reward {a['reward_mean']:.2f} / {b['reward_mean']:.2f}, calls/ep {a['calls_per_episode']:.2f} / "
                      f"{b['calls_per_episode']:.2f})", flush=True)
        if not args.skip_ppo:
            settings = ppo_settings(args, bs)
            ours.ppo_setup(settings)
            trl.call("ppo_setup", **settings)
            for r in range(args.repeats + 1):
                lo = (r * bs) % NUM_QUERIES
                sl = slice(lo, lo + bs)
                a = ours.ppo_step(prompts[sl], metas[sl])
                b = trl.call("ppo_step", prompts=prompts[sl], answers=answers[sl])
                if r:
                    rows["ours_ppo"].append(a)
                    rows["trl_ppo"].append(b)
                    print(f"[ppo B={bs} #{r}] ours {a['seconds']:.2f} s/step (rollout {a['rollout_s']:.2f} + update "
                          f"{a['update_s']:.2f}), TRL {b['seconds']:.2f} s/step (rollout {b['rollout_s']:.2f} + update "
                          f"{b['update_s']:.2f})", flush=True)
        results[bs] = rows
    return results


def summarize(results: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (measurement, batch size): medians of both sides and ratio ours/TRL."""
    table = []
    for bs, rows in results.items():
        def rate(side: str, key: str) -> float:
            return median([x[key] / x["seconds"] for x in rows[f"{side}_rollout"]])

        for label, key, unit in (("rollout", "episodes", "episodes/s"), ("rollout", "model_tokens", "generated tokens/s")):
            o, t = rate("ours", key), rate("trl", key)
            target = "≥ 5×" if key == "episodes" and bs >= 64 else ""
            table.append({"what": f"{label} {unit}", "B": bs, "ours": o, "trl": t, "ratio": o / t, "target": target,
                          "met": (o / t >= 5) if target else None, "higher_is_better": True})
            if key == "episodes" and rows["ours_hf_rollout"]:
                h = rate("ours_hf", key)
                table.append({"what": "  ours without the lean decoder, episodes/s", "B": bs, "ours": h, "trl": t,
                              "ratio": h / t, "target": "", "met": None, "higher_is_better": True})
        if rows["ours_ppo"]:
            for key, unit, target in (("seconds", "PPO s/step (rollout + update)", "≤ 1/3"), ("rollout_s", "  of which rollout s", ""),
                                      ("update_s", "  of which update s", "")):
                o, t = median([x[key] for x in rows["ours_ppo"]]), median([x[key] for x in rows["trl_ppo"]])
                table.append({"what": unit, "B": bs, "ours": o, "trl": t, "ratio": o / t, "target": target,
                              "met": (o / t <= 1 / 3) if target else None, "higher_is_better": False})
        for key in ("reward_mean", "calls_per_episode"):
            o = median([x[key] for x in rows["ours_rollout"]])
            t = median([x[key] for x in rows["trl_rollout"]])
            table.append({"what": f"  (rollout {key})", "B": bs, "ours": o, "trl": t, "ratio": o / t if t else float("nan"),
                          "target": "", "met": None, "higher_is_better": None})
    return table


# ---------------------------------------------------------------- correctness (scripted episodes)


class ScriptedLM:
    """Writes the scripted turns (``trl_side.next_scripted_token``) through the KV-cache interface
    our sampler uses; the TRL side forces the same tokens through ``generate``."""

    def __new__(cls, scripts: list[dict[str, Any]], response_id: int, eos_id: int, vocab: int) -> Any:
        import torch
        from torch import nn

        from trl_side import next_scripted_token

        class Rows:
            def __init__(self, rows: list[list[int]]) -> None:
                self.rows = rows

            def batch_select_indices(self, idx: torch.Tensor) -> None:
                self.rows = [self.rows[i] for i in idx.tolist()]

        class Model(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.anchor = nn.Parameter(torch.zeros(1))  # the sampler reads the device from a parameter

            def forward(self, input_ids: Any, attention_mask: Any = None, past_key_values: Any = None, **_: Any) -> Any:
                from types import SimpleNamespace

                if past_key_values is None:
                    cache = Rows([[t for t, m in zip(r, a) if m] for r, a in zip(input_ids.tolist(), attention_mask.tolist())])
                else:
                    cache = past_key_values
                    for row, t in zip(cache.rows, input_ids[:, -1].tolist()):
                        row.append(t)
                logits = torch.full((len(cache.rows), input_ids.shape[1], vocab), -1e9)
                for i, row in enumerate(cache.rows):
                    logits[i, -1, next_scripted_token(row, scripts, response_id, eos_id)] = 0.0
                return SimpleNamespace(logits=logits, past_key_values=cache)

        return Model()


def scripted_cases(task: Any) -> list[dict[str, Any]]:
    """Fixed episodes on held-out problems whose answer is not in their question (so a reward that
    looks for the answer can only find it where something wrote it)."""
    from orchestrator.tools.calculator import format_number

    problems = [p for p in task.eval_problems() if format_number(p.answer, 2) not in p.question]
    plans = [
        ("tool, then answer", lambda e, a: [f"<request><Calculator>{e}<call>", f"\n\nResult={a}<submit>"]),
        ("direct answer", lambda e, a: [f"Result={a}<submit>"]),
        ("unknown tool", lambda e, a: [f"<request><Calc>{e}<call>", f"\n\nResult={a}<submit>"]),
        ("call on the last turn", lambda e, a: [f"<request><Calculator>{e}<call>", f"<request><Calculator>{e}<call>"]),
        ("past max_length", lambda e, a: [f"<request><Calculator>{e}<call>", f"\n\nResult={a}<submit>"]),
    ]
    cases = []
    for (name, plan), problem in zip(plans, problems):
        answer = format_number(problem.answer, 2)
        cases.append({"name": name, "problem": problem, "answer_text": answer,
                      "turns": plan(problem.meta["expression"], answer), "prompt": task.prompt(problem, False)})
    return cases


def correctness(args: argparse.Namespace, ours: OurSide, trl: TrlClient) -> dict[str, Any]:
    """Scripted episodes through both environments: same model tokens under the mask? where not alike, why."""
    import torch

    from orchestrator.rollout.environment import RESPONSE
    from orchestrator.rollout.sampler import SamplingParams
    from orchestrator.task import problem_meta

    tok = ours.tokenizer
    cases = scripted_cases(ours.task)
    scripts = [{"prompt_ids": tok(c["prompt"], add_special_tokens=False)["input_ids"],
                "turns": [tok(t, add_special_tokens=False)["input_ids"] for t in c["turns"]]} for c in cases]
    response_id = tok.convert_tokens_to_ids(RESPONSE)
    model = ScriptedLM(scripts, response_id, tok.eos_token_id, len(tok))
    greedy = SamplingParams(temperature=0.0)
    # the scripted "model" has no position limit: room enough that only the max_length case is cut
    ours_eps = ours.env(max_length=4 * MAX_LENGTH).rollout(model, [c["prompt"] for c in cases], [problem_meta(c["problem"]) for c in cases], greedy,
                                  torch.Generator())
    # the max_length case again, with the limit inside its tool output
    last = cases[-1]
    limit = len(scripts[-1]["prompt_ids"]) + len(scripts[-1]["turns"][0]) + 1
    ours_eps[-1] = ours.env(max_length=limit).rollout(model, [last["prompt"]], [problem_meta(last["problem"])], greedy,
                                                      torch.Generator())[0]
    answer = trl.call("scripted", scripts=scripts, response_id=response_id, answers=[float(c["problem"].answer) for c in cases],
                      max_new_tokens=args.max_new_tokens, max_turns=args.max_turns, max_length=limit)
    rows = []
    for case, ep, theirs in zip(cases, ours_eps, answer["episodes"]):
        ours_model = [t for t, m in zip(ep.ids, ep.mask) if m]
        trl_model = [t for t, m in zip(theirs["ids"], theirs["mask"]) if m]
        same_all = ep.ids == theirs["ids"] and ep.mask == theirs["mask"]
        ours_tool = [s.text for s in ep.segments if s.source == "tool"]
        trl_tool = [s["text"] for s in theirs["segments"][1:] if s["system"]]
        rows.append({
            "case": case["name"], "answer": case["answer_text"], "turns": case["turns"],
            "same_model_tokens": ours_model == trl_model, "same_episode": same_all,
            "ours_len": len(ep.ids), "trl_len": len(theirs["ids"]),
            "ours_model_tokens": len(ours_model), "trl_model_tokens": len(trl_model),
            "ours_end": ep.end_reason, "ours_truncated": ep.end_reason in ("max_length", "max_turns"),
            "trl_completed": theirs["completed"], "trl_truncated": theirs["truncated"],
            "ours_reward": ep.reward, "trl_reward": theirs["reward"],
            "ours_reward_text": ep.model_text(), "trl_reward_text": theirs["reward_text"],
            # a reward that looks for the answer in the text it is given (as the seed's TriviaQA one did)
            "ours_contains_answer": float(case["answer_text"] in ep.model_text()),
            "trl_contains_answer": float(case["answer_text"] in theirs["reward_text"]),
            "ours_tool_text": ours_tool, "trl_tool_text": trl_tool,
        })
    return {"rows": rows, "max_length": limit, "trl_max_length_error": answer["max_length_error"],
            "ours_max_length_episode_len": len(ours_eps[-1].ids)}


def correctness_findings(report: dict[str, Any]) -> list[str]:
    """The differences, in words, each with the concrete texts."""
    rows = {r["case"]: r for r in report["rows"]}
    out = []
    for r in report["rows"]:
        mark = "same" if r["same_model_tokens"] else "DIFFERENT"
        if r["case"] == "past max_length" and not r["same_model_tokens"]:
            mark = "different by design (ours stops at max_length, TRL cannot, see below)"
        whole = "whole episode identical" if r["same_episode"] else f"episodes differ ({r['ours_len']} vs {r['trl_len']} tokens)"
        out.append(f"{r['case']}: model tokens under the mask {mark} ({r['ours_model_tokens']} vs {r['trl_model_tokens']}); {whole}")
    r = rows.get("unknown tool")
    if r:
        out.append(f"unknown tool: ours shows the model {r['ours_tool_text']!r}; TRL shows {r['trl_tool_text']!r} "
                   "(its 'Unknown tool' message is overwritten by the KeyError that follows it)")
    r = rows.get("call on the last turn")
    if r:
        out.append(f"call on the last turn: TRL's reward reads {r['trl_reward_text']!r} (the tool's output, its last segment); "
                   f"ours reads the model's text {r['ours_reward_text']!r}. A reward that looks for the answer "
                   f"{r['answer']!r} pays TRL {r['trl_contains_answer']:g} for the calculator's words, ours "
                   f"{r['ours_contains_answer']:g}. TRL also runs that last call ({r['trl_len'] - r['ours_len']} more tool tokens) "
                   f"and flags the episode completed={r['trl_completed']}, truncated={r['trl_truncated']}; ours ends it "
                   f"'{r['ours_end']}' (counted in env/truncated_frac)")
    r = rows.get("past max_length")
    if r:
        out.append(f"max_length={report['max_length']}: TRL's TextEnvironment with max_length set fails on its first check: "
                   f"{report['trl_max_length_error']} (it takes len() of the first token id), so TRL must run without a "
                   f"limit: the same episode grows to {r['trl_len']} tokens, truncated={r['trl_truncated']}. Ours stops at "
                   f"{report['ours_max_length_episode_len']} tokens, end '{r['ours_end']}'")
    return out


# ---------------------------------------------------------------- report


def machine() -> str:
    from bench.machine_info import machine as describe

    return describe()


def fmt(x: float) -> str:
    if x != x:  # nan
        return "-"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def render(table: list[dict[str, Any]], findings: list[str], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title=title)
    for col in ("measurement", "B", "ours (median)", "TRL (median)", "ours/TRL", "target", "met"):
        out.add_column(col, justify="left" if col in ("measurement", "target") else "right")
    for row in table:
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        out.add_row(row["what"], str(row["B"]), fmt(row["ours"]), fmt(row["trl"]), fmt(row["ratio"]), row["target"], met)
    console = Console() if sys.stdout.isatty() else Console(width=150)
    console.print(out)
    for line in findings:
        console.print(f"- {line}", highlight=False, markup=False)


def markdown(table: list[dict[str, Any]], findings: list[str], meta: dict[str, Any]) -> str:
    lines = [
        f"## TRL comparison (bench/vs_trl.py), {meta['date']}",
        "",
        f"Machine: {meta['machine']}. Load average {meta['load_before']} before, {meta['load_after']} after."
        + (f" {meta['note']}" if meta.get("note") else ""),
        "",
        f"Command: `{meta['command']}` ({meta['wall_s']:.0f} s). TRL side: trl {meta['trl']['trl']}, transformers "
        f"{meta['trl']['transformers']}, torch {meta['trl']['torch']} in `{meta['venv']}`; ours: transformers {meta['ours_transformers']}.",
        f"Model: `{meta['model']}` ({meta['architecture']}), saved once and loaded by both sides "
        f"(logits within {meta['check']['logits_max_abs_diff']:.1e}, {meta['check']['prompts_same_ids']}/{meta['check']['prompts']} "
        "prompts tokenized alike).",
        f"Settings, both sides: {NUM_QUERIES} held-out calculator queries, temperature 1, max {meta['max_new_tokens']} new tokens "
        f"per turn, {meta['max_turns']} turns, calculator in process; PPO minibatch {meta['minibatch_size']}, 4 epochs, lr 1e-4, "
        f"KL 0.02 (adaptive), grad clip 1; {meta['threads']} torch thread(s) per side; ours and TRL alternate, "
        f"{meta['repeats']} timed repeats after a warm-up, medians. TRL's TextEnvironment generates in chunks of 16 whatever the "
        "batch (hard-coded) and runs without `max_length` (its check crashes, see below); ours uses max_length "
        f"{MAX_LENGTH}.",
        "",
        "| measurement | B | ours | TRL | ours/TRL | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table:
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['what'].strip()} | {row['B']} | {fmt(row['ours'])} | {fmt(row['trl'])} | {fmt(row['ratio'])} | "
                     f"{row['target']} | {met} |")
    lines += ["", "Correctness (scripted episodes, the same tokens forced on both sides):", ""]
    lines += [f"- {line}" for line in findings]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    venv = args.venv.expanduser()
    trl_versions = ensure_venv(venv)
    if args.setup_only:
        return
    sys.path[:0] = [str(REPO), str(REPO / "bench")]
    import transformers

    from orchestrator.task import problem_meta

    workdir = args.workdir.expanduser()
    model_dir = save_shared_model(source_model(args), workdir / "model")
    ours = OurSide(model_dir, args)
    problems = ours.task.eval_problems()[:NUM_QUERIES]
    prompts = [ours.task.prompt(p, False) for p in problems]
    metas = [problem_meta(p) for p in problems]
    answers = [float(p.answer) for p in problems]
    trl = TrlClient(venv, model_dir, args.threads, workdir / "trl_side.log")
    try:
        check = check_same_model(ours, trl, prompts)
        findings: list[str] = []
        if not args.skip_correctness:
            findings = correctness_findings(correctness(args, ours, trl))
            for line in findings:
                print(f"[correctness] {line}", flush=True)
        table = summarize(measure(args, ours, trl, prompts, metas, answers))
    finally:
        trl.close()
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(), "load_before": load_before,
        "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()), "note": args.note,
        "command": " ".join(["python bench/vs_trl.py", shlex.join(argv if argv is not None else sys.argv[1:])]).strip(),
        "wall_s": time.perf_counter() - started, "trl": trl_versions, "venv": str(venv),
        "ours_transformers": transformers.__version__, "model": str(args.model or "default tiny calculator model"),
        "architecture": check["trl_architecture"], "check": check, "max_new_tokens": args.max_new_tokens,
        "max_turns": args.max_turns, "minibatch_size": args.minibatch_size, "threads": args.threads, "repeats": args.repeats,
    }
    render(table, findings, f"toolrl vs TRL 0.11.4 ({meta['date']}, {meta['machine']})")
    if not args.no_append:
        results = REPO / "bench" / "RESULTS.md"
        with results.open("a") as fh:
            fh.write("\n" + markdown(table, findings, meta))
        print(f"appended to {results}")


if __name__ == "__main__":
    main()
