"""The library imports only downward, and no two of its modules import each other.

Layers, lowest first (README "Layout"): formats and shared utilities
(unified_io.common) -> the VQ-GAN and the model -> data -> inputs glue -> evaluation ->
training -> command lines. A module may import its own layer and the layers below it;
function-level imports count as much as top-level ones. The graph is read from the source
with `ast`, nothing is imported.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("unified_io", "vqgan")

# (layer, module prefixes); the longest matching prefix decides a module's layer.
LAYERS = (
  ("common", ("unified_io.common",)),
  ("vqgan", ("vqgan",)),
  ("model", ("unified_io.model",)),
  ("data", ("unified_io.data",)),
  ("inputs", ("unified_io.data.from_config", "vqgan.data")),
  ("eval", ("unified_io.eval",)),
  ("train", ("unified_io.train", "vqgan.train")),
  (
    "cli",
    (
      "unified_io",
      "unified_io.evaluate",
      "unified_io.predict",
      "unified_io.convert",
      "unified_io.data.show",
      "unified_io.train.__main__",
      "unified_io.model.__main__",
    ),
  ),
)
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


def layer_of(module: str) -> str:
  best, best_len = None, -1
  for name, prefixes in LAYERS:
    for prefix in prefixes:
      if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
        best, best_len = name, len(prefix)
  if best is None:
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
  return best


def module_files(root=ROOT):
  """{module name: path} of every .py file of the packages."""
  found = {}
  for package in PACKAGES:
    for dirpath, _, names in os.walk(os.path.join(root, package)):
      for name in names:
        if name.endswith(".py"):
          rel = os.path.relpath(os.path.join(dirpath, name), root)[:-3]
          module = rel.replace(os.sep, ".")
          found[module[: -len(".__init__")] if module.endswith(".__init__") else module] = (
            os.path.join(dirpath, name)
          )
  return found


def imports_of(source: str, module: str, is_package: bool, known) -> set:
  """Modules of `known` that `source` (the text of `module`) imports, anywhere in it."""
  out = set()
  package = module if is_package else module.rpartition(".")[0]
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
      names = [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
      ]
    else:
      continue
    for name in names:
      while name and name not in known:  # `import a.b.c` names a.b.c, the deepest we know
        name = name.rpartition(".")[0]
      if name and name != module:
        out.add(name)
  return out


def import_graph(root=ROOT):
  files = module_files(root)
  graph = {}
  for module, path in files.items():
    with open(path) as f:
      graph[module] = imports_of(f.read(), module, path.endswith("__init__.py"), files)
  return graph


def upward_imports(graph):
  return sorted(
    f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
    for a, targets in graph.items()
    for b in targets
    if RANK[layer_of(b)] > RANK[layer_of(a)]
  )


def cycles(graph):
  """Strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

  def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in graph.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        result.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return result


def _without_package_facades(graph):
  """A package's __init__ importing its own modules (to register them) and those modules
  importing a sibling are not a cycle between concerns; drop the parent-to-child edges."""
  return {a: {b for b in targets if not b.startswith(a + ".")} for a, targets in graph.items()}


def test_every_module_has_a_layer():
  for module in module_files():
    layer_of(module)


def test_no_upward_imports():
  assert upward_imports(import_graph()) == []


def test_no_import_cycles():
  assert cycles(_without_package_facades(import_graph())) == []


def test_checker_finds_an_upward_import_and_a_cycle(tmp_path):
  """The checks above can fail: a fabricated tree with one upward import and one cycle."""
  for rel, text in {
    "unified_io/__init__.py": "",
    "unified_io/common/__init__.py": "",
    "unified_io/common/vocab.py": "def f():\n  from unified_io.eval import metrics\n",
    "unified_io/eval/__init__.py": "",
    "unified_io/eval/metrics.py": "from unified_io.eval import report\n",
    "unified_io/eval/report.py": "from . import metrics\n",
    "vqgan/__init__.py": "",
  }.items():
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
  graph = import_graph(str(tmp_path))
  assert upward_imports(graph) == [
    "unified_io.common.vocab (common) imports unified_io.eval.metrics (eval)"
  ]
  assert cycles(graph) == [["unified_io.eval.metrics", "unified_io.eval.report"]]


@pytest.mark.parametrize("module", ["unified_io.data.tasks.registry", "unified_io.eval.report"])
def test_known_former_cycles_are_gone(module):
  """The registry no longer imports its task modules; the report no longer imports the
  evaluation loop (both were hidden cycles)."""
  graph = import_graph()
  assert not any(
    b.startswith("unified_io.data.tasks.") for b in graph[module] if module.endswith("registry")
  )
  assert "unified_io.eval.task_eval" not in graph[module]
