"""The package reads as the pipeline: no import cycles, commands import the library
(never the other way round), and no file too long to read."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "videobert_jax")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules():
  """module name -> (path, parsed tree) for every file of the package."""
  modules = {}
  root = os.path.dirname(PACKAGE)
  for folder, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
        module = module.removesuffix(".__init__")
        with open(path, encoding="utf-8") as f:
          modules[module] = (path, ast.parse(f.read()))
  return modules


MODULES = _modules()


def _imports(module: str, tree: ast.AST) -> set[str]:
  """Package modules ``module`` imports, at any level (function bodies included)."""
  is_package = MODULES[module][0].endswith("__init__.py")
  package = module if is_package else module.rsplit(".", 1)[0]
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
      for alias in node.names:
        full = f"{base}.{alias.name}"
        found.add(full if full in MODULES else base)
  return {name for name in found if name in MODULES and name != module}


GRAPH = {module: _imports(module, tree) for module, (_, tree) in MODULES.items()}


def _find_cycle():
  """One import cycle as a list of modules, or None."""
  state = {}

  def visit(node, stack):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(GRAPH[node]):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt, stack)
        if cycle:
          return cycle
    stack.pop()
    state[node] = "done"
    return None

  for module in sorted(GRAPH):
    if module not in state:
      cycle = visit(module, [])
      if cycle:
        return cycle
  return None


def test_no_import_cycle():
  cycle = _find_cycle()
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_library_never_imports_a_command():
  offenders = [(m, dep) for m, deps in GRAPH.items() for dep in deps
               if dep.endswith(".__main__") and not m.endswith(".__main__")
               and m != "videobert_jax.checkpoints"]
  assert not offenders, f"library modules importing command lines: {offenders}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_files_stay_readable(module):
  path, _ = MODULES[module]
  with open(path, encoding="utf-8") as f:
    lines = len(f.read().splitlines())
  assert lines <= MAX_FILE_LINES, f"{path}: {lines} lines"


def test_no_function_over_80_lines():
  # Counted as the style rule counts them: def line to last line, decorators excluded.
  offenders = [f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})"
               for _, (path, tree) in sorted(MODULES.items())
               for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
               and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
  assert not offenders, (f"functions over {MAX_FUNCTION_LINES} lines:\n"
                         + "\n".join(offenders))


def test_every_stage_has_a_command_line():
  for stage in ("train", "eval", "quantize", "video", "corpus", "text", "pretrained",
                "checkpoints"):
    assert f"videobert_jax.{stage}.__main__" in MODULES, stage
