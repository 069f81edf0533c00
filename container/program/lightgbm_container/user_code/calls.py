"""Calling a user function the way the SageMaker Inference Toolkit does, with honest errors.

The toolkit passes its ``context`` only to functions that take one more parameter than
their data (``len(inspect.signature(f).parameters)``, defaults and ``*args`` included);
any other count is an error, which the toolkit reports on every request and this container
reports once, at startup. A user function that raises becomes a :class:`UserCodeError`
naming the function and the exception; the trace goes to the log only.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import ServingError, UserCodeError, UserCodeSetupError

log = logging.getLogger("user_code")


@dataclass(frozen=True)
class UserFunction:
    name: str
    function: Callable[..., Any]
    takes_context: bool
    is_user: bool  # False: the built-in default stands in for a function the user did not define

    @classmethod
    def find(
        cls, module: ModuleType, name: str, arity: int, default: Callable[..., Any] | None = None
    ) -> UserFunction | None:
        """The module's ``name`` (checked against ``arity``), else ``default`` (None: neither)."""
        function = getattr(module, name, None)
        if function is None:
            return None if default is None else cls(name, default, takes_context=False, is_user=False)
        if not callable(function):
            raise UserCodeSetupError(f"{_where(module)}: {name} is a {type(function).__name__}, not a function")
        try:
            count = len(inspect.signature(function).parameters)
        except (TypeError, ValueError):  # a builtin or C function without a signature: call it plainly
            count = arity
        if count not in (arity, arity + 1):
            raise UserCodeSetupError(
                f"{_where(module)}: {name} takes {count} arguments but {arity} were given "
                f"(or {arity + 1} with the context as the last one)"
            )
        return cls(name, function, takes_context=count == arity + 1, is_user=True)

    def __call__(self, context: Any, *args: Any) -> Any:
        if not self.is_user:
            return self.function(*args)
        try:
            return self.function(*args, context) if self.takes_context else self.function(*args)
        except ServingError:
            raise
        except Exception as exc:
            log.exception("%s raised", self.name)
            raise UserCodeError(self.name, exc) from exc


def _where(module: ModuleType) -> str:
    return getattr(module, "__file__", None) or module.__name__
