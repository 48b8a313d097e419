"""tests/docs_regen.py refreshes the outputs a page shows from what its commands print, and ``--check`` sees drift."""

from __future__ import annotations

import pytest

from tests.docs_helpers import refreshed_output
from tests.docs_regen import regenerate
from tests.test_docs_commands import command_environment
from xferdiag import __version__

COUNT = '''```python
# count.py
import sys
n = int(sys.argv[1])
print(f"counted {n} items in {n / 4:.2f} s")
print("done")
```
'''

PAGE = COUNT + '''
```console
$ xferdiag --version
xferdiag 9.9.9
$ python count.py 6
counted 2 items in ... s
```

<!-- not run: needs a GPU -->
```console
$ xferdiag nothing
made 3
```

```console
$ python count.py 10 \\
    && echo extra
done
counted 1 items in 0.25 s
```
'''

FRESH = COUNT + f'''
```console
$ xferdiag --version
xferdiag {__version__}
$ python count.py 6
counted 6 items in ... s
```

<!-- not run: needs a GPU -->
```console
$ xferdiag nothing
made 3
```

```console
$ python count.py 10 \\
    && echo extra
done
counted 10 items in 2.50 s
```
'''


def test_shown_lines_take_the_printed_numbers_and_keep_their_words_and_elisions():
    shown = ["  epoch 1 loss 0.5", "", "epoch 2 loss 0.4", "verdict: gap +9.5 points (95% CI ... to +12.6)", "gone 3"]
    printed = "progress 10%\r  epoch 1 loss 0.72\nepoch 2 loss 0.25\nverdict: gap -1 points (95% CI -3.25 to +0.5)\n"
    assert refreshed_output(shown, printed) == (
        ["  epoch 1 loss 0.72", "", "epoch 2 loss 0.25", "verdict: gap -1 points (95% CI ... to +0.5)", "gone 3"], ["gone 3"])
    # lines are taken in order where they can be, else the first that matches
    assert refreshed_output(["b 1", "a 1"], "a 5\nb 6\n") == (["b 6", "a 5"], [])
    # a number right after an elision is caught whole, sign and decimals included
    assert refreshed_output(["took ... -2.5 s"], "took 1 step in -12.75 s") == (["took ... -12.75 s"], [])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with command_environment(tmp_path_factory.mktemp("bin")) as env:
        yield env


@pytest.mark.slow
def test_a_page_is_rewritten_with_what_its_commands_print_and_then_checks_clean(tmp_path, env, capsys):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    assert regenerate([page], env, check=False) == 0
    assert page.read_text() == FRESH
    capsys.readouterr()
    assert regenerate([page], env, check=True) == 0
    assert capsys.readouterr().out == ""
    assert page.read_text() == FRESH


@pytest.mark.slow
def test_check_fails_with_a_diff_on_a_doctored_page_and_writes_nothing(tmp_path, env, capsys):
    page = tmp_path / "page.md"
    page.write_text(FRESH.replace("counted 10 items in 2.50 s", "counted 10 items in 9.99 s"))
    assert regenerate([page], env, check=True) == 1
    diff = capsys.readouterr().out
    assert "\n-counted 10 items in 9.99 s\n+counted 10 items in 2.50 s\n" in diff
    assert diff.count("\n-") == 1 and diff.count("\n+") == 2  # the one line, and the '+++' header
    assert "9.99" in page.read_text()


@pytest.mark.slow
def test_a_shown_line_whose_words_changed_is_named_and_the_page_left_alone(tmp_path, env, capsys):
    doctored = FRESH.replace("counted 6 items in ... s", "tallied 6 items in ... s")
    page = tmp_path / "page.md"
    page.write_text(doctored)
    assert regenerate([page], env, check=False) == 1
    assert "'python count.py 6' no longer prints 'tallied 6 items in ... s'" in capsys.readouterr().err
    assert page.read_text() == doctored
