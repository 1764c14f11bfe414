"""A tools/ script without a .py suffix (tools/mem-costmodel, tools/kvm-repro...) as
a module, for the host tests of its functions."""
import importlib.machinery
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tool(script, name=None):
    """tools/SCRIPT (or an absolute path) loaded as module NAME (default: the
    script's name with '-' as '_')."""
    path = script if os.path.isabs(script) else os.path.join(ROOT, "tools", script)
    name = name or os.path.basename(path).replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(name, path)
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(mod)
    return mod
