"""User-facing errors.

Anything a user can cause (a bad file, a wrong checkpoint, a bad config, no face found) raises
`PoseFaceError` with a one-line message that names the file and the fix. The command line prints
that line without a traceback; library users can catch it.
"""


class PoseFaceError(Exception):
    """An error whose message is meant for the user: one line, names the file and the fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def import_optional(module: str, extra: str, what: str):
    """`module`, imported; a PoseFaceError naming the extra to install when it is missing (the packages
    only some commands need live in extras: train, demo, onnx, video)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise PoseFaceError(
            f"{what} needs {package}, which is not installed; pip install 'poseface[{extra}]'"
        ) from None


class ParameterError(PoseFaceError):
    """A bad argument, worded with the library's parameter name: `upscale=20: must be between 1 and 16`
    (`metrics: unknown ...` when there is no one value to show).

    `reason` may name the parameter again as `{flag}` ("use {flag}cpu or auto"). A command line shows
    the same error with its own flag through `worded("--upscale ")` (see `for_cli`).
    """

    def __init__(self, name: str, value: object | None, reason: str):
        self.name, self.value, self.reason = name, value, reason
        super().__init__(self.worded(f"{name}="))

    def worded(self, flag: str) -> str:
        """The message with `flag` (e.g. "--device " or "--set train.device=") in front of each value;
        without a value (a list that is wrong as a whole) it starts with the bare name."""
        head = flag.rstrip(" =") if self.value is None else f"{flag}{self.value}"
        return f"{head}: {self.reason.format(flag=flag)}"


def for_cli(exc: PoseFaceError, flags: dict[str, str] | None = None) -> str:
    """The line a command prints for `exc`: a ParameterError names the flag, `flags[name]` or
    `--name-with-dashes `; any other error as it is."""
    if not isinstance(exc, ParameterError):
        return str(exc)
    flag = (flags or {}).get(exc.name, "--" + exc.name.replace("_", "-") + " ")
    return " ".join(exc.worded(flag).split())
