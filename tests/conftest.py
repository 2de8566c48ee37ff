import os

for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[var] = "1"

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """One cache for the whole session: the micro base model is pretrained once, in a temp folder."""
    path = tmp_path_factory.mktemp("forgetbench-cache")
    old = os.environ.get("FORGETBENCH_CACHE")
    os.environ["FORGETBENCH_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("FORGETBENCH_CACHE", None)
    else:
        os.environ["FORGETBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def micro_base(isolated_cache):
    from bench.micro import base_model
    return base_model()


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    """A cache of its own for one test (for tests that corrupt cached files)."""
    monkeypatch.setenv("FORGETBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
