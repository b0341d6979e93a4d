"""JupyterLab in a real browser: a learner opens a lesson, runs its cells and reads the output.

JupyterLab runs as ``make lab`` runs it (the project's ``jupyter/`` config folder on
``JUPYTER_CONFIG_PATH``) on a copy of the course, and Debian's Chromium, driven by
Playwright (no browser is downloaded), opens week 1's lesson. The output the
browser shows must be the output the same cells give when run headless; the page
must make no request off this machine (the news feed and the update check are off),
and nbgrader's menu must be there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
LESSON = "curriculum/week01_framing/lesson.ipynb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_printed_output(path: Path) -> tuple[int, str]:
    """Index (among code cells) and stdout of the lesson's first code cell that prints, run headless."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    with client.setup_kernel():
        code = [(n, c) for n, c in enumerate(nb.cells) if c.cell_type == "code"]
        for i, (n, cell) in enumerate(code):
            client.execute_cell(cell, n)
            text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
            if text.strip():
                return i, text
    raise AssertionError(f"{LESSON} prints nothing; the browser test reads a printed output")


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a copy of the course; stopped, with its kernels, afterwards."""
    root = tmp_path / "course"
    shutil.copytree(REPO / "curriculum", root / "curriculum")
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_PATH": str(REPO / "jupyter"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),  # no user settings or workspaces of this machine
    }
    cmd = [
        str(BIN / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "lab.log", "wb")
    server = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.3)
        yield root, url, token
    finally:
        family = [server.pid] + [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
        server.send_signal(signal.SIGTERM)  # the server shuts its kernels down on the way out
        try:
            server.wait(timeout=30)
        finally:
            log.close()
        left = [p for p in map(_alive, family) if p]
        for p in left:
            p.kill()
        assert not left, f"JupyterLab left processes: {[p.cmdline() for p in left]}"


def _alive(pid: int):
    try:
        p = psutil.Process(pid)
        return p if p.status() != psutil.STATUS_ZOMBIE else None
    except psutil.NoSuchProcess:
        return None


@pytest.mark.integration
def test_a_learner_runs_a_lesson_in_jupyterlab_in_chromium(lab):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing; install it with `sudo apt-get install -y chromium` (or `make system`)."
        )
    from playwright.sync_api import expect, sync_playwright

    root, url, token = lab
    index, printed = first_printed_output(REPO / LESSON)
    off_machine = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith(url) or r.url.startswith("data:")
                    else off_machine.append(r.url)
                ),
            )
            page.goto(f"{url}/lab/tree/{LESSON}?token={token}")
            cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
            expect(cells.first).to_be_visible(timeout=60_000)
            expect(page.locator(".jp-StatusBar-Widget", has_text="Idle").first).to_be_visible(
                timeout=60_000
            )
            menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
            assert "Nbgrader" in menus, f"no nbgrader menu in {menus}"
            for i in range(index + 1):  # run the code cells in order, as a learner does
                cells.nth(i).locator(".jp-InputPrompt").click()
                page.keyboard.press("Control+Enter")
                expect(cells.nth(i).locator(".jp-InputPrompt")).to_have_text(
                    f"[{i + 1}]:", timeout=60_000
                )
            shown = cells.nth(index).locator(".jp-OutputArea-output").first.inner_text()
            assert shown.split() == printed.split(), (
                f"browser shows {shown!r}, headless run printed {printed!r}"
            )
            news = page.get_by_text("official Jupyter news")
            assert news.count() == 0, (
                "JupyterLab asked about news; the project's settings turn it off"
            )
        finally:
            browser.close()
    assert not off_machine, f"the page asked for resources off this machine: {off_machine[:5]}"
