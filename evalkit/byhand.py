"""The tools by hand: the exact command evalkit ran, printed for a terminal and rerunnable from a notebook.

Each layer runs one tool (GuideLLM, lm-eval, promptfoo). :class:`ByHand` holds one such command: its argument
list, the environment variables it needs beyond the terminal's own (offline switches, promptfoo's state folder),
the folder it runs in and what it writes. ``str(hand)`` is a line to paste into a terminal; ``hand.run()`` runs the
same command here, after checking what a by-hand run most often gets wrong: the server is gone, or an edited
promptfoo config no longer parses. Outputs go to a new folder, so the run evalkit made stays as it was.

- :func:`guidellm`: a ``guidellm run`` for a server and sweep parameters (``perf.command_for``).
- :func:`lm_eval`: the ``lm-eval run`` an accuracy result recorded, writing into another folder.
- :func:`promptfoo`: ``promptfoo eval`` on a config (the generated one or an edited copy), with promptfoo's own
  console table and an HTML page of the results; :func:`copy_config` makes the copy to edit.
- :func:`show_html`: a link that opens GuideLLM's or promptfoo's HTML report in a JupyterLab tab;
  :func:`view_command`: the ``promptfoo view`` line for the browser viewer.
"""

from __future__ import annotations

import copy
import html
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evalkit import proc
from evalkit.errors import ConfigError, TaskFileError
from evalkit.serve.client import heartbeat
from evalkit.settings import get_settings

# variables worth showing in a by-hand line: the ones evalkit sets that change what the tool does
SHOWN = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "GUIDELLM__MAX_WORKER_PROCESSES",
         "PROMPTFOO_CONFIG_DIR", "PROMPTFOO_CACHE_PATH", "PROMPTFOO_DISABLE_TELEMETRY", "PROMPTFOO_DISABLE_UPDATE",
         "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")


@dataclass
class ByHand:
    """One tool command as a learner would type it."""

    tool: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    base_url: str | None = None
    model: str | None = None
    config: Path | None = None
    outputs: list[Path] = field(default_factory=list)
    console: Callable[[str], bool] | None = None  # the console lines a run here shows (None: all); the log has all

    def shell(self) -> str:
        """The command as one terminal line: the folder, the variables it needs, then the tool's arguments."""
        shown = {k: v for k, v in get_settings().tool_env(self.env).items() if k in SHOWN}
        variables = " ".join(f"{k}={shlex.quote(v)}" for k, v in shown.items())
        line = shlex.join(proc.redacted(self.argv))
        return f"cd {shlex.quote(str(self.cwd))} && " + (f"env {variables} " if variables else "") + line

    def __str__(self) -> str:
        return self.shell()

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the terminal line, wrapped by nothing
        printer.text(self.shell())

    def check(self) -> None:
        """Fail with one message and its fix before the tool starts.

        Checked: the promptfoo config still parses (the original config is never touched), and the server answers.
        """
        if self.config is not None:
            from evalkit.promptfoo import check_config_file

            check_config_file(self.config)
        if self.base_url:
            from evalkit.serve import attach

            attach(self.base_url, self.model)

    def run(self, *, echo: bool = True, timeout_s: float | None = None) -> proc.ProcResult:
        """Run the command here, its output streamed as in a terminal; returns exit code and last lines.

        Raises:
            ServerUnreachableError: nobody answers at the command's server (start it, or correct the URL).
            TaskFileError: the promptfoo config is not valid YAML (line and column named).
        """
        self.check()
        for out in self.outputs:
            out.parent.mkdir(parents=True, exist_ok=True)
        log = self.outputs[0].parent / f"{self.tool}.log" if self.outputs else None
        ran = proc.run(self.argv, env=get_settings().tool_env(self.env), cwd=self.cwd, timeout_s=timeout_s,
                       echo=self._shown() if echo and self.console and log else echo, log_path=log,
                       heartbeat=heartbeat(self.base_url.removesuffix("/v1") if self.base_url else None, self.tool))
        print(f"[evalkit] {self.tool} exited with code {ran.returncode} after {ran.duration_s:.0f} s"
              + (f"; files: {', '.join(str(p) for p in self.outputs if p.exists())}" if self.outputs else "")
              + (f"; its whole console: {log}" if self.console and log else ""), flush=True)
        return ran

    def _shown(self) -> Callable[[str], None]:
        """An echo that prints the console lines ``console`` keeps, without terminal escape codes."""
        lines = proc.Lines()

        def echo(text: str) -> None:
            for line in lines.feed(text):
                clean = proc.ANSI.sub("", line).rstrip()
                if self.console(clean):
                    print(clean, flush=True)

        return echo


def guidellm_tables(line: str) -> bool:
    """GuideLLM's result tables and their titles, without its set-up listing and log lines."""
    return line.startswith(("|", "ℹ ", "* ", "✔ Benchmarking complete")) and not line.startswith("ℹ The following")



def guidellm(srv, out_dir: str | Path, **sweep_args) -> ByHand:
    """``guidellm run`` against ``srv`` with :func:`evalkit.perf.sweep`'s arguments, writing into ``out_dir``."""
    from evalkit.perf import command_for
    from evalkit.perf.guidellm import default_workers

    out_dir = Path(out_dir).resolve()
    argv = command_for(srv, out_dir, **sweep_args)
    workers = sweep_args.get("workers") or default_workers()
    return ByHand("guidellm", argv, out_dir, {"GUIDELLM__MAX_WORKER_PROCESSES": str(workers)},
                  base_url=srv.base_url, model=srv.model, outputs=[out_dir / "benchmarks.json"],
                  console=guidellm_tables)


def lm_eval(result, out_dir: str | Path, *, endpoint: int = 0) -> ByHand:
    """The ``lm-eval run`` an accuracy result ran (its first endpoint's), writing into ``out_dir`` instead.

    It keeps ``--use_cache``: answers lm-eval already has are not asked again, so a rerun of the same tasks
    takes seconds; delete the cache folder (or drop the option) to ask the server everything again.
    """
    runs = result.tool_runs()
    if not runs:
        raise ConfigError(f"The accuracy result in {result.path} recorded no lm-eval command.",
                          fix="rerun the layer with this evalkit version, which records it.")
    argv = list(runs[endpoint].command)
    out_dir = Path(out_dir).resolve()
    argv[argv.index("--output_path") + 1] = str(out_dir / "lm-eval")
    args = dict(part.split("=", 1) for part in argv[argv.index("--model_args") + 1].split(","))
    base_url = args["base_url"].rsplit("/", 2 if args["base_url"].endswith("/chat/completions") else 1)[0]
    return ByHand("lm-eval", argv, out_dir, base_url=base_url, model=args.get("model"),
                  outputs=[out_dir / "lm-eval"])


def copy_config(config: str | Path, out_dir: str | Path, edit: Callable[[dict], object] | None = None) -> Path:
    """Copy a promptfoo config into ``out_dir`` (to edit by hand or with ``edit``); the original stays as it was.

    Args:
        config: the promptfooconfig.yaml a layer wrote (or any config).
        out_dir: the new folder; the copy is ``out_dir/promptfooconfig.yaml``.
        edit: optional function that changes the config's dict in place (add an assertion, a stricter rubric).

    Raises:
        TaskFileError: the original, or the edited copy, is not a valid promptfoo config.
    """
    from evalkit.promptfoo import check_config_file, write_config

    data = copy.deepcopy(check_config_file(Path(config)))
    if edit is not None:
        edit(data)
    target = Path(out_dir).resolve() / "promptfooconfig.yaml"
    if target == Path(config).resolve():
        raise ConfigError(f"copy_config would write over {config}.", fix="give another out_dir.")
    write_config(data, target)
    check_config_file(target)
    return target


def promptfoo(config: str | Path, out_dir: str | Path | None = None, *, concurrency: int | None = None,
              html_report: bool = True) -> ByHand:
    """``promptfoo eval`` on ``config`` as a learner runs it, printing promptfoo's own table.

    JSON and HTML output go to ``out_dir`` (default: the config's folder), promptfoo's state (what
    ``promptfoo view`` shows) to ``out_dir/.promptfoo``.
    """
    from evalkit.promptfoo import check_config_file, promptfoo_command, promptfoo_env

    config = Path(config).resolve()
    data = check_config_file(config)
    out_dir = Path(out_dir).resolve() if out_dir else config.parent
    providers = [p for p in data.get("providers") or [] if isinstance(p, dict)]
    base_url = next((p.get("config", {}).get("apiBaseUrl") for p in providers if p.get("config")), None)
    model = next((p["id"].split(":", 2)[2] for p in providers if str(p.get("id", "")).startswith("openai:")), None)
    outputs = [out_dir / "out.json"] + ([out_dir / "out.html"] if html_report else [])
    argv = [*promptfoo_command(), "eval", "-c", str(config)]
    for out in outputs:
        argv += ["-o", str(out)]
    argv += ["--no-cache", "--no-share", "--no-progress-bar"]
    if concurrency:
        argv += ["-j", str(concurrency)]
    return ByHand("promptfoo", argv, config.parent, promptfoo_env(out_dir, hosts=[base_url] if base_url else []),
                  base_url=base_url, model=model, config=config, outputs=outputs)


def view_command(out_dir: str | Path) -> str:
    """The terminal line that opens promptfoo's own viewer on the evals run with ``out_dir``'s state.

    It starts a local web server: open http://localhost:15500 in a browser; Ctrl-C stops it.
    """
    from evalkit.promptfoo import promptfoo_command, promptfoo_env

    state = promptfoo_env(Path(out_dir).resolve())["PROMPTFOO_CONFIG_DIR"]
    return (f"env PROMPTFOO_CONFIG_DIR={shlex.quote(state)} PROMPTFOO_DISABLE_TELEMETRY=1 "
            f"PROMPTFOO_DISABLE_UPDATE=1 {shlex.join(promptfoo_command())} view -n")


def show_html(path: str | Path, *, label: str | None = None, reports_dir: str | Path = "reports"):
    """A link to an HTML report (GuideLLM's benchmarks.html, promptfoo's out.html) that JupyterLab opens in a tab.

    The page is copied into ``reports_dir`` below the notebook's folder (the kernel's working folder, which
    JupyterLab serves; run folders lie outside it) and linked, not embedded: a report is 50 KB to over 1 MB, and
    promptfoo's holds every answer, harmful ones included. The link opens it in a JupyterLab tab; the original
    path is printed beside it for a browser outside JupyterLab.
    """
    import shutil

    from IPython.display import HTML

    path = Path(path)
    if not path.exists():
        raise TaskFileError(f"{path} does not exist.", fix="run the cell that writes it first (html=True).")
    folder = Path(reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = "-".join(part for part in path.resolve().parts[-3:] if part != "/")
    shutil.copyfile(path, folder / name)
    href = (folder / name).as_posix()
    size = path.stat().st_size / 1024
    label = label or f"{path.name}, the tool's own report"
    return HTML(f'<div>Open <a href="{html.escape(href, quote=True)}" target="_blank">{html.escape(label)}</a> '
                f"({size:,.0f} KB) in a JupyterLab tab. Outside JupyterLab: <code>{html.escape(str(path))}</code>"
                "</div>")
