"""Does the stage harness keep the grader safe from a stage's code, and say what went wrong?"""

from __future__ import annotations

import textwrap

import pandas as pd
import psutil
import pytest

from grading.harness import OutputError, read_bounded, run_stage
from grading.sandbox import Sandbox

REFERENCE = pd.DataFrame({"TX_AMOUNT": [1.0, 2.0, 3.0]})


def _run(tmp_path, monitor: str, timeout: float = 60):
    job = tmp_path / "job"
    kit = job / "kit"
    kit.mkdir(parents=True)
    (kit / "monitor.py").write_text(textwrap.dedent(monitor))
    return run_stage(
        job,
        lambda: Sandbox(job),
        kit,
        "drift",
        "flags",
        {"check": "monitor:check_drift"},
        {"reference": REFERENCE, "a": REFERENCE, "b": REFERENCE * 100},
        {"key": "drift", "batches": ["a", "b"]},
        timeout=timeout,
        log=tmp_path / "drift.log",
    )


def _alive(marker: str) -> list:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.mark.integration
def test_verdicts_are_read_back_and_a_numpy_bool_is_a_bool(tmp_path):
    r = _run(
        tmp_path,
        """
        import numpy as np
        def check_drift(reference, current):
            big = np.median(current["TX_AMOUNT"]) > 10 * np.median(reference["TX_AMOUNT"])
            return {"drift": big} if big else np.array(False)
        """,
    )
    v = r.result["verdicts"]
    assert (v["a"]["flag"], v["b"]["flag"]) == (False, True)
    assert not r.problems and r.error is None


@pytest.mark.integration
def test_an_unimplemented_check_says_so_with_the_kit_line(tmp_path):
    r = _run(
        tmp_path,
        """
        def check_drift(reference, current):
            raise NotImplementedError("not implemented yet")
        """,
    )
    err = r.result["verdicts"]["a"]["error"]
    assert err == "not implemented yet (monitor.py, line 3)"


@pytest.mark.integration
def test_a_module_that_cannot_import_is_a_reason(tmp_path):
    r = _run(tmp_path, "import no_such_module\n")
    assert "cannot import monitor:check_drift" in r.error and "no_such_module" in r.error


@pytest.mark.integration
def test_a_check_past_the_deadline_is_killed_with_everything_it_started(tmp_path):
    r = _run(
        tmp_path,
        """
        import subprocess, time
        def check_drift(reference, current):
            subprocess.Popen(["sleep", "617"], start_new_session=True)
            time.sleep(600)
        """,
        timeout=4,
    )
    assert r.timed_out and r.result is None
    assert "took longer than 4 s" in r.reason()
    assert not _alive("617")


@pytest.mark.integration
def test_an_output_that_is_a_link_is_refused(tmp_path):
    r = _run(
        tmp_path,
        """
        import json, os, sys
        def check_drift(reference, current):
            out = json.load(open(sys.argv[1]))["out"]
            os.symlink("/etc/hostname", os.path.join(out, "result.json"))
            os._exit(0)
        """,
    )
    assert r.result is None and "outside its folder" in r.reason()


@pytest.mark.integration
def test_an_oversized_output_is_refused(tmp_path):
    r = _run(
        tmp_path,
        """
        import json, os, sys
        def check_drift(reference, current):
            out = json.load(open(sys.argv[1]))["out"]
            with open(os.path.join(out, "result.json"), "w") as f:
                f.write('{"verdicts": "' + "x" * 3_000_000 + '"}')
            os._exit(0)
        """,
    )
    assert r.result is None and "above the 2,000,000" in r.reason()


def test_read_bounded_refuses_links_special_files_and_escapes(tmp_path):
    (tmp_path / "ok").write_bytes(b"12345")
    assert read_bounded(tmp_path / "ok", 10) == b"12345"
    with pytest.raises(OutputError, match="5 bytes, above the 4 allowed"):
        read_bounded(tmp_path / "ok", 4)
    (tmp_path / "link").symlink_to(tmp_path / "ok")
    with pytest.raises(OutputError, match="a link"):
        read_bounded(tmp_path / "link", 10)
    with pytest.raises(OutputError, match="no missing"):
        read_bounded(tmp_path / "missing", 10)
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "up").symlink_to(tmp_path)
    with pytest.raises(OutputError, match="outside its folder"):
        read_bounded(inner / "up" / "ok", 10, inside=inner)
    with pytest.raises(OutputError, match="not a regular file"):
        read_bounded(tmp_path, 10)


@pytest.mark.integration
def test_filling_the_disk_stops_the_stage(tmp_path):
    job = tmp_path / "job"
    kit = job / "kit"
    kit.mkdir(parents=True)
    (kit / "monitor.py").write_text(
        textwrap.dedent(
            """
            import json, os, sys
            def check_drift(reference, current):
                out = json.load(open(sys.argv[1]))["out"]
                chunk = b"x" * (8 * 2**20)
                i = 0
                while True:
                    with open(os.path.join(out, f"fill{i}.bin"), "wb") as f:
                        f.write(chunk)
                    i += 1
            """
        )
    )
    from grading.sandbox import Limits

    r = run_stage(
        job,
        lambda: Sandbox(job, Limits(disk_mb=64)),
        kit,
        "drift",
        "flags",
        {"check": "monitor:check_drift"},
        {"reference": REFERENCE, "a": REFERENCE},
        {"key": "drift", "batches": ["a"]},
        timeout=60,
    )
    assert r.timed_out and "64 MB disk quota" in r.reason()
