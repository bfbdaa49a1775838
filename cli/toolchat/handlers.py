"""Importing tool handlers: a user's modules load from their tools file's folder, privately.

A handler is `module:function` (found in the tools file's folder) or `path/to/file.py:function`
(relative to the tools file). Each folder handlers come from is a *scope*: its modules are imported
under a private package name (`_toolchat_scope_<digest>.tools.mything`), never under their own
names, so a user's `tools/`, `cli/`, `utils/`, `requests.py` or `yaml.py`:

- never replaces a module toolchat (or a library) imports, not even one imported lazily later;
- is never hidden by a module of the same name elsewhere (the repository's own `tools/` folder);
- does not collide with the same name in another tools file's folder.

Inside a scope, plain `import x` / `from x import y` in the user's code look in the scope's folder
first, as Python does for a script's folder: each module of a scope is executed with its own
`__builtins__` whose `__import__` maps the folder's top-level names to the private ones (exec()
documents that a `__builtins__` entry in the globals is used as the builtins). Everything else
imports as usual. `importlib.import_module("x")` in user code is not redirected.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import threading
import traceback
import types
from pathlib import Path
from typing import Callable

from .stdio import handler_code

_PREFIX = "_toolchat_scope_"
_PRIVATE = re.compile(re.escape(_PREFIX) + r"[0-9a-f]{12}\.")
_scopes: dict[str, "_Scope"] = {}  # private package name -> scope
_lock = threading.Lock()
_real_import = builtins.__import__


class HandlerError(Exception):
    """Why a handler could not be loaded, in one line."""


class _Scope:
    """One folder of user modules, importable under a private package name."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.name = _PREFIX + hashlib.sha1(os.fsencode(folder)).hexdigest()[:12]
        self._owns: dict[str, bool] = {}
        self.builtins = dict(builtins.__dict__, __import__=self._import)
        package = types.ModuleType(self.name, f"toolchat handler modules from {folder}")
        package.__path__ = [str(folder)]
        package.__package__ = self.name
        package.__spec__ = importlib.machinery.ModuleSpec(self.name, None, is_package=True)
        package.__spec__.submodule_search_locations = [str(folder)]
        sys.modules[self.name] = package

    def owns(self, top: str) -> bool:
        """Whether the folder holds a module or package named `top` (which then wins for its code)."""
        known = self._owns.get(top)
        if known is None:
            known = self._owns[top] = self._find(top)
        return known

    def _find(self, top: str) -> bool:
        if not top.isidentifier():
            return False
        base = self.folder / top
        if any((self.folder / (top + suffix)).is_file() for suffix in importlib.machinery.all_suffixes()):
            return True
        if (base / "__init__.py").is_file():
            return True
        if not base.is_dir():
            return False
        # A folder without __init__.py is a namespace package: Python prefers a regular module of
        # that name anywhere on the path, and so do we (a `json/` data folder does not hide json).
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return False
        return spec is None or spec.origin is None

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name:
            top = name.partition(".")[0]
            if self.owns(top):
                module = _real_import(f"{self.name}.{name}", globals, locals, fromlist, 0)
                return module if fromlist else sys.modules[f"{self.name}.{top}"]
        return _real_import(name, globals, locals, fromlist, level)


class _ScopedLoader(importlib.machinery.SourceFileLoader):
    """Runs a user module with its scope's builtins, so its own imports resolve in its folder."""

    def __init__(self, fullname: str, path: str, scope: _Scope):
        super().__init__(fullname, path)
        self.scope = scope

    def exec_module(self, module) -> None:
        module.__builtins__ = self.scope.builtins
        super().exec_module(module)


class _ScopeFinder:
    """Finds the modules of a scope (names under a private package) in the scope's folder."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        scope = _scopes.get(top)
        if scope is None or fullname == top or path is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec  # a namespace folder, bytecode or an extension: imported as it is
        return importlib.util.spec_from_file_location(
            fullname,
            spec.origin,
            loader=_ScopedLoader(fullname, spec.origin, scope),
            submodule_search_locations=spec.submodule_search_locations,
        )

    @staticmethod
    def invalidate_caches() -> None:
        for scope in list(_scopes.values()):
            scope._owns.clear()


def _scope(folder: Path) -> _Scope:
    with _lock:
        if not any(finder is _ScopeFinder for finder in sys.meta_path):
            sys.meta_path.insert(0, _ScopeFinder)
        for scope in _scopes.values():
            if scope.folder == folder:
                return scope
        scope = _Scope(folder)
        _scopes[scope.name] = scope
        return scope


def load_handler(ref: str, yaml_path: Path, fail: Callable[[str, str], Exception]) -> Callable:
    """The function a tools file's `handler:` names; raises fail("handler", why) when it cannot."""
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise fail("handler", f"{ref!r} must be module:function or path/to/file.py:function")
    base = yaml_path.resolve().parent
    try:
        if target.endswith(".py") or "/" in target or "\\" in target:
            file = (base / target).resolve()
            if not file.is_file():
                raise HandlerError(f"file {str(base / target)!r} not found")
            if file.suffix != ".py" or not file.stem.isidentifier():
                raise HandlerError(f"{target!r}: a handler file must be NAME.py, NAME a Python identifier")
            scope = _scope(file.parent)
            module = _import(scope, f"{scope.name}.{file.stem}", target)
        else:
            if not all(part.isidentifier() for part in target.split(".")):
                raise HandlerError(f"{target!r} is not a module name (module:function)")
            scope = _scope(base)
            # The tools file's folder first; a module it does not have is imported as usual
            # (a handler in an installed package).
            owned = scope.owns(target.partition(".")[0])
            module = _import(scope, f"{scope.name}.{target}" if owned else target, target)
        function = module
        for part in attr.split("."):
            function = getattr(function, part, None)
            if function is None:
                raise HandlerError(f"{target!r} has no {attr!r}")
    except HandlerError as exc:
        raise fail("handler", _public(str(exc))) from None
    except Exception as exc:  # a module's __getattr__ that raises
        raise fail("handler", f"{target!r}: {_cause(exc, base)}") from None
    if not callable(function):
        raise fail("handler", f"{target}:{attr} is not callable")
    return function


def _import(scope: _Scope, name: str, shown: str):
    """Import module `name`; every failure of its code becomes one HandlerError."""
    try:
        with handler_code():  # what a module prints while importing goes to stderr
            return importlib.import_module(name)
    except KeyboardInterrupt:
        raise
    except ModuleNotFoundError as exc:
        missing = _public(exc.name or "")
        if exc.name and exc.name.startswith(scope.name + "."):
            raise HandlerError(f"cannot import {shown!r}: no module {missing!r} in {scope.folder}") from None
        raise HandlerError(f"cannot import {shown!r}: {_cause(exc, scope.folder, typed=False)}") from None
    except BaseException as exc:  # the module's own code failed: SyntaxError, SystemExit, anything
        raise HandlerError(f"importing {shown!r} failed: {_cause(exc, scope.folder)}") from None


def _cause(exc: BaseException, folder: Path, typed: bool = True) -> str:
    """`Type: message (file, line N)`: the exception and where in the user's code it happened."""
    try:
        message = str(exc).strip()
    except Exception:
        message = ""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        message = exc.msg or message
        where = f"{_shown_path(exc.filename, folder)}, line {exc.lineno}"
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if _inside(f.filename, folder)]
        if frames:
            where = f"{_shown_path(frames[-1].filename, folder)}, line {frames[-1].lineno}"
    text = f"{type(exc).__name__}: {message}" if message and typed else message or type(exc).__name__
    return _public(" ".join(text.split())) + (f" ({where})" if where else "")


def _inside(filename: str, folder: Path) -> bool:
    if not os.path.isabs(filename):  # "<frozen importlib._bootstrap>", "<string>"
        return False
    try:
        return Path(filename).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


def _shown_path(filename: str, folder: Path) -> str:
    try:
        return str(Path(filename).resolve().relative_to(folder))
    except (OSError, ValueError):
        return filename


def _public(text: str) -> str:
    """Text with the private package names taken out (`_toolchat_scope_…​.tools.x` -> `tools.x`)."""
    return _PRIVATE.sub("", text)
