"""Every shell block of README.md and docs/*.md runs as printed (offline, in a temp folder per page), so the
documented commands cannot rot; a block that cannot run here says why in a ``<!-- not run: ... -->`` line.

The your-own-data commands of the README run against small fixtures made under the names the page uses
(``my_images/``, ``reviews.csv``, ...). ``$ command`` lines of a ```console block run one by one, and every
line shown as their output must be printed (numbers may differ; ``...`` stands for any text).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_image_folder
from tests.detection_helpers import mobilenet_v2_file
from tests.docs_helpers import ROOT, Block, console_steps, missing_output, pages, python_files, shell_blocks
from tests.docs_server import client_script

TIMEOUT_S = 600  # per block; a block that hangs fails instead of stalling CI
WORDS = {"positive": ["great", "lovely", "excellent", "superb", "wonderful", "fine"],
         "negative": ["awful", "poor", "terrible", "boring", "broken", "dull"]}
FILLER = ["the", "film", "was", "and", "plot", "actors", "story", "a", "really", "quite"]


def _mobilenet_v2(path: Path) -> None:
    """torchvision's ImageNet MobileNetV2 state_dict where the weights package is installed, else random weights of
    the same network (the commands run either way; only the numbers differ)."""
    found = mobilenet_v2_file()
    if found is not None:
        shutil.copy(found, path)
        return
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), path)


def _reviews(path: Path, n: int = 48) -> None:
    """Short reviews whose label is carried by two sentiment words among filler words."""
    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for i in range(n):
        label = ("positive", "negative")[i % 2]
        words = [*rng.choice(FILLER, 6), *rng.choice(WORDS[label], 2)]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{label}")
    path.write_text("\n".join(rows) + "\n")


def _tables(folder: Path) -> None:
    """scikit-learn's breast-cancer table split by texture: the source rows, half of the other rows as the
    user's table, and xferdiag's MLP for tables pretrained on the source as the user's checkpoint."""
    import torch
    from sklearn.datasets import load_breast_cancer

    from xferdiag.modalities.table.mlp import TabularMLP

    data = load_breast_cancer()
    header = ",".join([name.replace(" ", "_") for name in data.feature_names] + ["diagnosis"])
    low = data.data[:, 1] <= np.median(data.data[:, 1])  # column 1 is "mean texture"
    for name, rows in (("source.csv", np.flatnonzero(low)), ("patients.csv", np.flatnonzero(~low)[::2])):
        lines = [",".join([*(f"{v:.6g}" for v in data.data[i]), data.target_names[data.target[i]]]) for i in rows]
        (folder / name).write_text("\n".join([header, *lines]) + "\n")
    torch.manual_seed(0)
    model, rows = TabularMLP(num_classes=2, features=data.data.shape[1]), np.flatnonzero(low)
    x = torch.tensor(data.data[rows], dtype=torch.float32)
    y = torch.tensor([int(data.target_names[t] == "malignant") for t in data.target[rows]])  # classes sorted by name
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        batch = torch.randperm(len(y))[:32]
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), folder / "tabular-mlp.pt")


def readme_fixtures(folder: Path) -> None:
    """What the README's "Your own model and data" expects in the user's folder."""
    from xferdiag.tasks.detection.data import make_scenes, write_coco

    make_image_folder(folder / "my_images", classes=("cats", "dogs"), per_class=16, size=32, mode="RGB")
    _mobilenet_v2(folder / "mobilenet_v2.pth")
    _reviews(folder / "reviews.csv")
    _tables(folder)
    write_coco(make_scenes(40, seed=1), folder / "my_coco")


FIXTURES = {"README.md": readme_fixtures}
"""Per page, what its commands expect to find that no block of the page makes."""


@contextmanager
def command_environment(bin_dir: Path) -> Iterator[dict[str, str]]:
    """The environment the blocks run in: ``xferdiag`` on PATH runs the command in a child of a server that
    imported torch once (tests/docs_server.py), ``python`` is this interpreter, this checkout is first on the
    import path, and numeric libraries use one thread (a 2-core CI box runs other tests beside this one)."""
    address = str(bin_dir / "xferdiag.sock")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": path,
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    scripts = {"xferdiag": client_script(sys.executable, address), "python": f'#!/bin/sh\nexec "{sys.executable}" "$@"\n'}
    for name, text in {**scripts, "python3": scripts["python"]}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "docs_server.py"), address], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready", "the command server did not start"
        yield env
    finally:
        server.terminate()  # the server ends a command still running (one that ran past its timeout) with itself
        server.wait(timeout=60)


@pytest.fixture(scope="module")
def commands_env(tmp_path_factory):
    with command_environment(tmp_path_factory.mktemp("bin")) as env:
        yield env


def _bash(script: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)


def prepare_page(path: Path, folder: Path) -> None:
    """Write into ``folder`` the page's named python files and what its commands expect that no block makes."""
    for name, code in python_files(path).items():
        (folder / name).write_text(code)
    FIXTURES.get(path.name, lambda folder: None)(folder)


def run_step(block: Block, command: str, folder: Path, env: dict[str, str]) -> str:
    """Run one command of a block in ``folder`` and return what it printed; fail naming the block if it fails."""
    done = _bash(command, folder, env)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, f"{block.where}: exit {done.returncode} from\n{command}\n{printed[-3000:]}"
    return printed


def block_steps(block: Block) -> list[tuple[str, list[str]]]:
    """(command, shown output) pairs: a console block's ``$`` lines, or a bash block as one command showing nothing."""
    return console_steps(block) if block.lang == "console" else [(block.text, [])]


def run_block(block: Block, folder: Path, env: dict[str, str]) -> None:
    """Run one block in ``folder``; fail naming the block, the command and what it printed."""
    for command, shown in block_steps(block):
        printed = run_step(block, command, folder, env)
        missing = missing_output(shown, printed)
        assert not missing, f"{block.where}: {command!r} no longer prints {missing}; it printed:\n{printed[-3000:]}"


def runnable(path: Path) -> list[Block]:
    return [block for block in shell_blocks(path) if block.not_run is None]


@pytest.mark.slow
@pytest.mark.parametrize("page", [str(page.relative_to(ROOT)) for page in pages() if runnable(page)])
def test_every_shell_block_of_the_page_runs(page, tmp_path, commands_env):
    path = ROOT / page
    prepare_page(path, tmp_path)
    for block in runnable(path):
        run_block(block, tmp_path, commands_env)


PAGE = """# A page

<!-- not run: needs a GPU -->
```bash
torchrun --nproc_per_node=4 -m xferdiag finetune --out x
```

```python
# make_it.py
print("made")
```

```console
$ python make_it.py \\
    --fast
made 3 things in 1.5 s
$ xferdiag report r
report: r/report.html
```
"""


def test_a_page_is_read_into_blocks_markers_files_and_steps(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    marked, console = shell_blocks(page)
    assert (marked.lang, marked.line, marked.not_run) == ("bash", 4, "needs a GPU")
    assert (console.lang, console.not_run) == ("console", None)
    assert python_files(page) == {"make_it.py": '# make_it.py\nprint("made")\n'}
    assert console_steps(console) == [("python make_it.py \\\n    --fast", ["made 3 things in 1.5 s"]),
                                      ("xferdiag report r", ["report: r/report.html"])]


def test_shown_output_may_differ_in_numbers_and_elided_text_only():
    shown = ["verdict: transfer positive (gap +9.5 points, 95% CI +6.5 to +12.6)", "explain plan: 4 examples x ..."]
    assert missing_output(shown, "progress 10%\rverdict: transfer positive (gap -1 points, 95% CI -3.25 to +0.5)\n"
                                 "explain plan: 2 examples x 1 methods ~ 3 s\n") == []
    assert missing_output(shown, "verdict: transfer negative (gap -1 points, 95% CI -3.25 to +0.5)\n"
                                 "explain plan: 2 texts x 1 methods\n") == shown
