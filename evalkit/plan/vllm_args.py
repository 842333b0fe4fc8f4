"""Each planned vLLM command line parsed by vLLM's own argument parser; a refused one is a problem of the plan."""

from __future__ import annotations

from evalkit.plan.size import Problem


def check_commands(plan) -> None:
    """Parse every planned vLLM command line with vLLM's own parser; a refused one is a problem of the plan.

    ``plan`` is a :class:`~evalkit.plan.build.Plan` (not imported here: the plan imports this module).
    """
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
            from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError as exc:
        plan.args_checked = f"not checked: vLLM's parser did not import ({exc})"
        return
    for server in plan.servers:
        if not server.command:
            continue
        args = server.command[server.command.index("--model"):]
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                validate_parsed_serve_args(make_arg_parser(FlexibleArgumentParser(prog="vllm serve")).parse_args(args))
        except SystemExit:
            said = [line for line in err.getvalue().splitlines() if "error:" in line]
            plan.problems.append(Problem(server.started_in, "vLLM arguments", f"vLLM's parser refuses the command "
                                         f"of {server.key}: {said[-1] if said else err.getvalue()[-300:]}",
                                         "correct extra_server_args / the profile's settings."))
        except (TypeError, ValueError) as exc:
            plan.problems.append(Problem(server.started_in, "vLLM arguments",
                                         f"vLLM refuses the arguments of {server.key}: {exc}",
                                         "correct extra_server_args / the profile's settings."))
    plan.args_checked = "each parsed by vLLM's own argument parser"
