"""Finding a browser for the site checks the portable way (sclip_lib/testing/browser.py)."""

from __future__ import annotations

import stat

from sclip_lib.testing import browser


def _executable(path):
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_explicit_setting_wins_and_a_wrong_one_finds_nothing(tmp_path, monkeypatch):
    chrome = _executable(tmp_path / "my-chrome")
    monkeypatch.setenv(browser.CHROMIUM_ENV, str(chrome))
    assert browser.find_chromium() == chrome
    monkeypatch.setenv(browser.CHROMIUM_ENV, str(tmp_path / "absent"))
    assert browser.find_chromium() is None  # a named browser that is not there is not replaced by another


def test_names_on_path_other_than_debians(tmp_path, monkeypatch):
    monkeypatch.delenv(browser.CHROMIUM_ENV, raising=False)
    for name in ("google-chrome", "chromium-browser"):
        folder = tmp_path / name
        folder.mkdir()
        found = _executable(folder / name)
        monkeypatch.setenv("PATH", str(folder))
        assert browser.find_chromium() == found


def test_nothing_found_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(browser.CHROMIUM_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(browser, "_playwright_chromium", lambda: None)
    assert browser.find_chromium() is None
    assert "apt-get install chromium" in browser.missing_message() and browser.CHROMIUM_ENV in browser.missing_message()
