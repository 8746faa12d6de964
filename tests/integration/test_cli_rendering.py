"""`hrsync executions` and `hrsync show` read at 80 columns (DESIGN §3): short ids, whole words, labelled
tables instead of JSON; `--wide` for every column. The real CLI on the session's MariaDB app database."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.integration.scenarios import CHAIN, hrsync, record
from tests.web.page_fixtures import record_succeeded

pytestmark = [pytest.mark.integration, pytest.mark.drives_subprocesses]


@pytest.fixture
def columns_80(monkeypatch: pytest.MonkeyPatch, app_db: str) -> None:
    """The CLI draws for an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "50")
    assert os.environ["COLUMNS"] == "80"


def test_executions_fit_80_columns_without_cutting_words(columns_80: None) -> None:
    """Each row holds the 8-character id, the whole kind and status, when it took how long, the failed stage;
    no line is wider than 80 and nothing ends in an ellipsis; --wide adds the whole id."""
    kind = f"nightly{uuid.uuid4().hex[:4]}"  # 11 characters, longer than any kind hrsync makes
    failed = record(kind, status="failed", failed_stage="merge", stages=CHAIN)
    done = record_succeeded(kind)
    shown = hrsync("executions", "--kind", kind)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in shown.stdout
    assert lines[0].split() == ["id", "kind", "status", "created", "took", "failed", "stage"]
    rows = {line.split()[0]: line.split() for line in lines[1:3]}
    assert rows[done[:8]][1:3] == [kind, "succeeded"]
    assert rows[done[:8]][-1] == "12.5s"  # finished 12.5 s after it started
    assert rows[failed[:8]][1:3] == [kind, "failed"]
    assert rows[failed[:8]][-1] == "merge"
    assert failed not in shown.stdout  # the whole id only with --wide
    assert failed in hrsync("executions", "--kind", kind, "--wide").stdout


def test_show_prints_inputs_and_stages_as_labelled_tables(columns_80: None) -> None:
    """`show` at 80 columns: inputs one label per line, each stage's read/written/sent/failed in a table,
    no JSON braces."""
    execution_id = record_succeeded(f"t{uuid.uuid4().hex[:8]}")
    shown = hrsync("show", execution_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "{" not in shown.stdout
    assert any(line.split() == ["stages", "extract", "→", "merge", "→", "notify"] for line in lines)
    figures = {cells[0]: cells[1:5] for line in lines
               if (cells := [c.strip() for c in line.strip("│┃ ").split("│")]) and cells[0] in ("extract", "merge",
                                                                                                 "notify")
               and len(cells) > 5}
    # extract wrote inserted + updated = 240 + 11; merge wrote its days, 4605 + 56 + 1887 = 6548
    assert figures == {"extract": ["251", "251", "-", "0"], "merge": ["10167", "6548", "-", "-"],
                       "notify": ["-", "-", "400", "2"]}
