"""`zoo`: parse arguments, call zoo.api, draw progress, map results to exit codes.

One module per group of commands (train, package, validate, predict), all registered on `app.app`; what they
share (consoles, option types, one-line errors) is in `common`, how results look in `show`.

Exit codes: 0 passed, 1 findings (validation failed), 2 usage or input error, 3 not verified (nothing failed
but nothing was verified, e.g. the only weights need --trust), 130 interrupted; zoo.validators.report decides
the verdicts."""

# registered in the order of the chain: train → export → package → validate → predict
from zoo.cli import train_commands  # noqa: F401, I001
from zoo.cli import package_commands  # noqa: F401
from zoo.cli import convert_commands  # noqa: F401
from zoo.cli import finetune_commands  # noqa: F401
from zoo.cli import validate_commands  # noqa: F401
from zoo.cli import predict_commands  # noqa: F401
from zoo.cli.app import app


def main() -> None:
    """The `zoo` command: a bad option value is one line (`error: --lr 0: must be greater than 0`), exit 2."""
    import sys

    import typer

    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.TyperException as e:  # click's usage errors, as typer vendors them
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        if type(e).__name__ == "NoArgsIsHelpError":  # `zoo` alone: the help, as asked
            sys.stdout.write(message + "\n")
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        see = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        sys.stderr.write(f"error: {message}{see}\n")
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
