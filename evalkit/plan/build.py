"""The plan of a run: every server its notebooks start or reuse, in order, sized for a machine, checked before a start.

:func:`make_plan` reads a profile's parameters (over each notebook's defaults) the way the notebooks use them: the
run's server for ``MODEL`` (notebooks 00-04 reuse it), notebook 03's ``CLIMB_MODELS`` and notebook 04's
``COMPARE_MODEL``, each answered by the run's server when it serves them (an adapter of its model) and otherwise
by a server started beside it and stopped after its use (``ek.serve_beside`` in a ``with`` block). Each server
is sized like :mod:`evalkit.serve.memory` sizes a start: on a GPU, vLLM claims its share of every GPU it uses
(``gpu_memory_utilization`` for the run's server, ``gpu_memory_utilization_beside`` for one beside it) and must
hold weights, runtime and one sequence of its context in it; servers up together may claim at most
:data:`SHARE_LIMIT` of a GPU; a model too large for one GPU is sharded over 2, 4 or 8 (vLLM's tensor
parallelism) where the machine has them. On a CPU each server takes weights, its KV cache and its processes'
memory from what the machine has available. Each server's vLLM command line is the one ``serve()`` would run,
and :func:`~evalkit.plan.vllm_args.check_commands` parses it with vLLM's own argument parser.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field

from evalkit.errors import ConfigError, UnknownModelError
from evalkit.models import ModelPreset, adapters_of, get_preset
from evalkit.plan.hardware import Hardware, get_hardware
from evalkit.plan.size import Problem, size_server
from evalkit.settings import Settings

SHARE_LIMIT = 0.9  # servers up at once claim at most this of a GPU: what vLLM claims for one server by default
RUN = "evalkit run"  # the step that starts the run's server, before the first notebook


class PlanError(ConfigError):
    """A run that cannot fit the machine: said before any server starts."""


@dataclass
class PlannedServer:
    """One vLLM server of the plan, sized for the machine."""

    key: str
    model: str  # what vLLM loads (a preset name, or an attached endpoint's URL)
    serves: tuple[str, ...]  # the names clients ask for (the model and its adapters)
    role: str  # "run" (the run's server), "beside" (started beside it, stopped after use), "attached" (by URL)
    dtype: str = ""
    context: int = 0  # --max-model-len
    tensor_parallel: int = 1
    share: float | None = None  # --gpu-memory-utilization (GPU only)
    weights_gib: float = 0.0  # per GPU on a GPU
    kv_cache_gib: float = 0.0  # per GPU on a GPU
    kv_tokens: int = 0  # tokens the KV cache holds (all sequences together)
    decode_ceiling: float | None = None  # output tokens/s of one stream at most: bandwidth / bytes read per token
    need_gib: float = 0.0  # what it takes from the machine (per GPU: its claim; CPU: weights + KV + runtime)
    command: list[str] = field(default_factory=list)
    started_in: str = RUN
    stopped_after: str = ""


@dataclass(frozen=True)
class Step:
    """One moment of the run: a notebook asks for a model and gets a server (started, reused) or stops one."""

    notebook: str
    parameter: str
    model: str
    action: str  # start | reuse | stop | attach
    server: str
    up: tuple[str, ...]  # servers running after this step
    used: float  # GPU: the shares claimed on the busiest GPU; CPU: GiB taken by the servers up


@dataclass
class Plan:
    """The servers of a run on one machine, the order they come and go in, and whether it all fits."""

    profile: str
    hardware: Hardware
    model: str
    settings: dict
    servers: list[PlannedServer] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    args_checked: str = "not checked"

    @property
    def fits(self) -> bool:
        return not self.problems

    def servers_frame(self):
        import pandas as pd

        rows = [{"server": s.key, "model": s.model, "role": s.role, "dtype": s.dtype, "context": s.context,
                 "GPUs (tensor parallel)": s.tensor_parallel if self.hardware.gpu else None,
                 "share": s.share, "weights_GiB": round(s.weights_gib, 2), "kv_cache_GiB": round(s.kv_cache_gib, 2),
                 "kv_tokens": s.kv_tokens, "takes_GiB": round(s.need_gib, 2),
                 "decode ceiling tok/s (derived)": round(s.decode_ceiling) if s.decode_ceiling else None,
                 "started in": s.started_in,
                 "stopped after": s.stopped_after or "the run's end", "serves": ", ".join(s.serves)}
                for s in self.servers]
        return pd.DataFrame(rows).set_index("server") if rows else pd.DataFrame()

    def steps_frame(self):
        import pandas as pd

        unit = "GPU share used" if self.hardware.gpu else "GiB used"
        return pd.DataFrame([{"notebook": s.notebook, "parameter": s.parameter, "model": s.model,
                              "action": s.action, "server": s.server, "servers up": ", ".join(s.up),
                              unit: round(s.used, 2)} for s in self.steps])

    def budget(self) -> str:
        hw = self.hardware
        if hw.gpu:
            return (f"{hw.gpus} x {hw.gpu_memory_gib:.1f} GiB; servers up at once may claim {SHARE_LIMIT} of a GPU")
        return f"{hw.memory_gib:.1f} GiB available for servers and tools"

    def text(self) -> str:
        """The plan as a person reads it: machine, servers, steps, vLLM commands, verdict."""
        import shlex

        hw = self.hardware
        lines = [f"Plan of profile {self.profile!r} (model {self.model}) on {hw.name}: {hw.description}; "
                 f"{self.budget()}" + (f" ({hw.note})" if hw.note else "")]
        if self.settings:
            lines.append("Settings from the profile: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()))
        if self.servers:
            lines += ["", "Servers:", self.servers_frame().to_string()]
        if self.steps:
            lines += ["", "In order:", self.steps_frame().to_string(index=False)]
        commands = [(s.key, s.command) for s in self.servers if s.command]
        if commands:
            lines += ["", f"vLLM command lines ({self.args_checked}):"]
            lines += [f"  {key}: {shlex.join(cmd)}" for key, cmd in commands]
        lines += [f"Note: {note}" for note in self.notes]
        lines.append("")
        ceilings = list({s.model: s for s in self.servers if s.decode_ceiling}.values())
        if ceilings:
            each = "; ".join(f"{s.model} {s.decode_ceiling:.0f} output tokens/s" for s in ceilings)
            lines.append(f"Expected on {hw.name}, on paper (not measured here): one stream decodes at most {each}"
                         f" ({hw.bandwidth_gbs:.0f} "
                "GB/s per GPU over the weights' bytes; real single streams reach roughly 55-80 % of it). Published "
                "measurements: the gpu entries of docs/figures.yaml.")
        if self.fits:
            lines.append(f"FITS: every server starts within its share ({self.budget()}).")
        else:
            lines.append(f"DOES NOT FIT ({len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}):")
            lines += [f"  {p}\n    Fix: {p.fix}" for p in self.problems]
        return "\n".join(lines)

    def check(self) -> Plan:
        """Return the plan when it fits; raise :class:`PlanError` with the first problem and its fix otherwise."""
        if self.fits:
            return self
        first = self.problems[0]
        more = f" ({len(self.problems) - 1} more: `evalkit plan --profile {self.profile}` lists them)" \
            if len(self.problems) > 1 else ""
        raise PlanError(f"The run of profile {self.profile!r} does not fit {self.hardware.name}: {first}{more}",
                        fix=first.fix)


# --- what the notebooks ask for -------------------------------------------------------------------------------

def notebook_values(profile: str, profiles: dict | None = None) -> dict[str, dict]:
    """Each notebook's parameters as a run of ``profile`` gives them: its defaults, the profile's values over them."""
    import papermill

    from evalkit.pipeline.profiles import NOTEBOOKS, notebooks_dir, profile_parameters

    given = profile_parameters(profile, profiles)
    values = {}
    for name in NOTEBOOKS:
        defaults = papermill.inspect_notebook(str(notebooks_dir() / f"{name}.ipynb"))
        values[name] = {key: _literal(spec["default"]) for key, spec in defaults.items()}
        values[name].update(given.get(name, {}))
    return values


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def profile_settings(profile: str, profiles: dict | None = None) -> dict:
    """The settings a profile sets for its run (``settings:`` in profiles.yaml), checked against :class:`Settings`."""
    from evalkit.pipeline.profiles import load_profiles

    profiles = profiles if profiles is not None else load_profiles()
    spec = (profiles.get(profile) or {}).get("settings") or {}
    unknown = sorted(set(spec) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"profiles.yaml, profile {profile}: unknown setting(s) {', '.join(unknown)}.",
                          fix="use fields of evalkit.settings.Settings, e.g. gpu_memory_utilization, "
                              "gpu_memory_utilization_beside, max_model_len.")
    return dict(spec)


# --- the plan -------------------------------------------------------------------------------------------------

def make_plan(profile: str = "quick", hardware: str | Hardware | None = None, *, model: str | None = None,
              base_url: str | None = None, local: bool | None = None, check_args: bool = False,
              profiles: dict | None = None, notebooks: list[str] | None = None) -> Plan:
    """Plan a run of ``profile`` on ``hardware`` (a row name, a :class:`Hardware`, or None: this machine).

    Args:
        profile: a profile of profiles.yaml.
        hardware: where the run would go (default: the machine this runs on).
        model: the run's model instead of the profile's (``evalkit run --model``).
        base_url: the run's server is attached by URL (it takes nothing from this machine).
        local: the plan is for this machine, so hub models must be in the local cache (default: True when
            ``hardware`` is None).
        check_args: parse each vLLM command line with vLLM's own parser (imports vLLM: seconds).
        profiles: the profiles (default: profiles.yaml).
        notebooks: only these notebooks run (``evalkit run --only``); default: all.
    """
    from evalkit.pipeline.profiles import load_profiles
    from evalkit.settings import get_settings

    profiles = profiles if profiles is not None else load_profiles()
    if profile not in profiles:
        raise ConfigError(f"Unknown profile {profile!r}.", fix=f"use one of: {', '.join(profiles)}.")
    local = hardware is None if local is None else local
    hw = hardware if isinstance(hardware, Hardware) else get_hardware(hardware)
    overrides = profile_settings(profile, profiles)
    settings = get_settings().model_copy(update=overrides)
    values = notebook_values(profile, profiles)
    run_model = model or (profiles[profile] or {}).get("model") or settings.model
    plan = Plan(profile=profile, hardware=hw, model=run_model, settings=overrides)
    if hw.note:
        plan.notes.append(hw.note)
    planner = _Planner(plan, settings, local)
    main = planner.start_run_server(run_model, base_url)
    runs = [n for n in values if notebooks is None or n in notebooks]
    if main is not None:
        for notebook in ("00_serve", "01_performance", "02_format", "03_accuracy", "04_safety"):
            if notebook in runs:
                planner.reuse(notebook, "MODEL", main)
        if "01_performance" in runs:
            planner.check_context(main, values)
        for name in values["03_accuracy"].get("CLIMB_MODELS") or [] if "03_accuracy" in runs else []:
            planner.ask("03_accuracy", "CLIMB_MODELS", name, main)
        compare = values["04_safety"].get("COMPARE_MODEL") if "04_safety" in runs else None
        if compare and compare != run_model:
            planner.ask("04_safety", "COMPARE_MODEL", compare, main)
    if check_args:
        from evalkit.plan.vllm_args import check_commands

        check_commands(plan)
    return plan


class _Planner:
    """Walks a run's server requests in order, keeping which servers are up."""

    def __init__(self, plan: Plan, settings: Settings, local: bool):
        self.plan, self.settings, self.local = plan, settings, local
        self.up: list[PlannedServer] = []

    def _preset(self, name: str, where: tuple[str, str]) -> ModelPreset | None:
        try:
            preset = get_preset(name)
        except UnknownModelError:
            if os.path.isdir(os.path.expanduser(name)):
                self.plan.notes.append(f"{name} is a local folder: not sized (its figures are not in the presets).")
                return None
            self.plan.problems.append(Problem(*where, f"unknown model {name!r}.",
                                              "use a preset (`evalkit plan` lists them in notebook 00), a local model "
                                              "folder, or attach to a server by URL (--base-url)."))
            return None
        return get_preset(preset.base) if preset.base else preset

    def start_run_server(self, name: str, base_url: str | None) -> PlannedServer | None:
        where = (RUN, "model")
        if base_url:
            server = PlannedServer("s1", base_url, (name,), "attached")
            self.plan.servers.append(server)
            self._step(RUN, "base_url", name, "attach", server)
            return server
        preset = self._preset(name, where)
        if preset is None:
            return None
        return self._start(preset, name, where, "run", self.settings.gpu_memory_utilization)

    def _serves(self, preset: ModelPreset) -> tuple[str, ...]:
        return (preset.name, *(a.name for a in adapters_of(preset.name)))

    def _start(self, preset: ModelPreset, asked: str, where: tuple[str, str], role: str,
               share: float) -> PlannedServer:
        server = PlannedServer(f"s{len(self.plan.servers) + 1}", preset.name, self._serves(preset), role,
                               started_in=where[0])
        self.plan.problems += size_server(server, preset, self.plan.hardware, self.settings, share, where)
        self.plan.problems += self._availability(preset, where)
        server.command = self._command(preset, server)
        self.plan.servers.append(server)
        self.up.append(server)
        self._step(*where, asked, "start", server)
        self._check_together(where)
        return server

    def ask(self, notebook: str, parameter: str, name: str, main: PlannedServer) -> None:
        """``ek.serve_beside(name, [run's server])``: the run's server when it serves ``name``, else one beside it."""
        where = (notebook, parameter)
        if name in main.serves:
            self.reuse(notebook, parameter, main, name)
            return
        preset = self._preset(name, where)
        if preset is None:
            return
        server = self._start(preset, name, where, "beside", self.settings.gpu_memory_utilization_beside)
        self.up.remove(server)
        server.stopped_after = f"{notebook} ({name})"
        self._step(notebook, parameter, name, "stop", server)

    def reuse(self, notebook: str, parameter: str, server: PlannedServer, name: str | None = None) -> None:
        self._step(notebook, parameter, name or self.plan.model, "reuse", server)

    def _step(self, notebook, parameter, model, action, server) -> None:
        self.plan.steps.append(Step(notebook, parameter, model, action, server.key,
                                    tuple(s.key for s in self.up), self._used()))

    def _used(self) -> float:
        if self.plan.hardware.gpu:
            return sum(s.share or 0.0 for s in self.up)
        return sum(s.need_gib for s in self.up)

    def _check_together(self, where: tuple[str, str]) -> None:
        from evalkit.serve.memory import TOOLS_HEADROOM_GIB

        hw, used = self.plan.hardware, self._used()
        names = " + ".join(f"{s.model} ({s.share if hw.gpu else round(s.need_gib, 1)})" for s in self.up)
        if hw.gpu and used > SHARE_LIMIT + 1e-9:
            self.plan.problems.append(Problem(
                *where, f"{names} claim {used:.2f} of a GPU together, more than {SHARE_LIMIT}: vLLM refuses the "
                "second start.",
                "give the servers shares that add up to 0.9 or less (profile settings gpu_memory_utilization and "
                "gpu_memory_utilization_beside, as in the full profile), or leave this parameter empty."))
        elif not hw.gpu and used + TOOLS_HEADROOM_GIB > hw.memory_gib:
            self.plan.problems.append(Problem(
                *where, f"{names} take {used:.1f} GiB together, and the tools {TOOLS_HEADROOM_GIB:.0f} GiB; "
                f"{hw.memory_gib:.1f} GiB is available.",
                "close programs that hold memory, or leave this parameter empty (one server at a time)."))

    def _availability(self, preset: ModelPreset, where: tuple[str, str]) -> list[Problem]:
        """A hub model must be downloaded before an offline run (gated ones need a token for that)."""
        if preset.embedded:
            return []
        from evalkit.serve.resolve import in_hf_cache
        from evalkit.settings import hf_token

        if in_hf_cache(preset.source):
            return []
        if preset.gated and not hf_token():
            return [Problem(*where, f"{preset.source} is gated: downloading it needs a Hugging Face token, and none "
                            "is set (HF_TOKEN).", f"accept its licence on the hub, `export HF_TOKEN=hf_...`, then "
                            f"`hf download {preset.source}`; or choose an open model (qwen2.5-*).")]
        download = f"`hf download {preset.source}` before the run (evalkit runs offline)"
        if self.local and self.settings.offline:
            return [Problem(*where, f"{preset.source} is not in the local Hugging Face cache.", f"{download}.")]
        note = f"{preset.name}: not downloaded on this machine; {download}."
        if note not in self.plan.notes:
            self.plan.notes.append(note)
        return []

    def _command(self, preset: ModelPreset, server: PlannedServer) -> list[str]:
        from evalkit.serve.command import server_command
        from evalkit.serve.resolve import ModelRef

        source = preset.model_arg()
        ref = ModelRef(name=preset.name, source=source, tokenizer=source, preset=preset)
        device = "gpu" if self.plan.hardware.gpu else "cpu"
        port = self.settings.port + (0 if server.role == "run" else 1)
        settings = self.settings.model_copy(update={"tensor_parallel_size": server.tensor_parallel})
        return server_command(ref, port, device, settings, server.context, share=server.share)

    def check_context(self, main: PlannedServer, values: dict[str, dict]) -> None:
        """Token counts the notebooks send must fit the run's server's context (workloads are scaled, and said)."""
        perf = values.get("01_performance", {})
        if not main.context:
            return
        asks = [("PROMPT_TOKENS + OUTPUT_TOKENS", (perf.get("PROMPT_TOKENS") or 0) + (perf.get("OUTPUT_TOKENS") or 0)),
                ("GRID_PROMPT_TOKENS + GRID_OUTPUT_TOKENS",
                 max(perf.get("GRID_PROMPT_TOKENS") or [0]) + max(perf.get("GRID_OUTPUT_TOKENS") or [0]))]
        for parameter, tokens in asks:
            if tokens > main.context:
                self.plan.problems.append(Problem(
                    "01_performance", parameter, f"{tokens} tokens per request exceed the context of {main.model} "
                    f"({main.context}, max_model_len).", f"lower {parameter.split(' + ')[0]} or raise max_model_len "
                    f"(profile settings) up to the model's {get_preset(main.model).max_context}."))
        from evalkit.perf.workloads import WORKLOADS

        cap = perf.get("WORKLOAD_TOKENS")
        for name in perf.get("WORKLOADS") or []:
            shape = WORKLOADS.get(name)
            size = shape.prompt_tokens + shape.output_tokens if shape else 0
            if shape and (cap is None or cap >= size) and size > main.context:
                self.plan.notes.append(f"01_performance: workload {name} ({size} tokens) is scaled down to the "
                                       f"context {main.context}.")
