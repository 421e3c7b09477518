"""Shared fixtures: a small world, its tokenizer and a tiny random Llama, all built locally.

tests/unit/ mirrors the package (tests/unit/train/ for spin_core/train/, ...); tests/system/ runs the
workflow and the command line end to end (micro runs, kills, resume, SLURM, bad input, report)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One compute thread a process (torch reads this when first imported, below): the suite runs more
# pytest-xdist workers than there are cores, so a second thread only waits for a core, and OpenMP
# threads spin while they wait (issue #26: test_theory's overlay test took 47 CPU-s on two threads
# beside the other workers, 7 on one). Workflow jobs set their own, from the config's resources.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from spin_core.config import WorldConfig  # noqa: E402
from spin_core.world.world import TinyWorld  # noqa: E402


@pytest.fixture(scope="session")
def world():
    return TinyWorld(WorldConfig(n_words=12, seed=3))


@pytest.fixture(scope="session")
def tokenizer(world):
    from spin_core.world.tokenizer import build_tokenizer

    return build_tokenizer(world.words)


@pytest.fixture(scope="session")
def tiny_arch():
    """LlamaConfig kwargs of the tests' tiny models."""
    return dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )


@pytest.fixture(scope="session")
def tiny_model(tokenizer, tiny_arch):
    from spin_core.train.sft import build_tiny_model
    from spin_core.world.tokenizer import non_response_token_ids

    model = build_tiny_model(tiny_arch, tokenizer, non_response_token_ids(tokenizer), seed=0)
    return model.eval()


@pytest.fixture(scope="session")
def tasks(tmp_path_factory, world):
    """The tiny world's evaluation tasks, written once (world.json, test.jsonl, out/)."""
    from spin_core.config import TinyTasksConfig
    from spin_core.io import write_jsonl
    from spin_core.world.sft_data import make_tiny_sft_data
    from spin_core.world.tasks import build_tiny_eval_tasks

    d = tmp_path_factory.mktemp("eval")
    _, test = make_tiny_sft_data(world, 5, 40, seed=1)
    write_jsonl(d / "test.jsonl", test)
    world.save(d / "world.json")
    cfg = TinyTasksConfig(n_docs=40, n_choices=4, n_mt_bench_questions=3)
    build_tiny_eval_tasks(cfg, d / "world.json", d / "test.jsonl", d / "out")
    return d


# The longest files first, longest to shortest (each file's wall time in a 2-worker run, 2026-12-04:
# e2e ~420 s, smol ~260, distributed ~210, rehearsal ~190, resume ~130, kill ~100, recipe ~80, SLURM
# ~70). scripts/test.sh runs three pytest-xdist workers with --dist loadfile (a file's tests, and so
# a module's or a file's session fixture, stay in one worker) in this order (--no-loadscope-reorder);
# a worker that finishes a file takes the next, and the short files fill in at the end, so the
# workers finish about together (the suite is CPU-bound: an idle core at the end is lost time).
LONG_FIRST = (
    "tests/system/test_workflow_e2e.py",
    "tests/system/test_smol.py",
    "tests/test_distributed.py",
    "tests/system/test_rehearsal.py",
    "tests/system/test_resume.py",
    "tests/system/test_kill_stages.py",
    "tests/system/test_recipe.py",
    "tests/system/test_slurm.py",
    "tests/system/test_injection.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((i for i, f in enumerate(LONG_FIRST) if item.nodeid.startswith(f)), len(LONG_FIRST))

    items.sort(key=rank)  # stable: the order within a file is kept


# CPU seconds per test, its own and its child processes' (workflow jobs, launched trainings): on 2
# cores the suite keeps both busy, so a test's wall time under pytest-xdist says as much about the
# other worker as about the test. Setup and teardown count with the test (a module fixture's run with
# its first test). The end of every run lists the CPU_TOP tests that used the most.
CPU_KEY = "cpu_seconds"
CPU_TOP = 15  # as many as --durations lists (scripts/test.sh)
_cpu_at_start: dict[str, float] = {}
_cpu_by_test: dict[str, float] = {}


def _cpu_now() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _cpu_at_start[item.nodeid] = _cpu_now()  # before any fixture of the test is set up


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    if call.when == "teardown" and item.nodeid in _cpu_at_start:
        # before the teardown report is made, so the number travels with it to the xdist controller
        item.user_properties.append((CPU_KEY, _cpu_now() - _cpu_at_start.pop(item.nodeid)))
    yield


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        for key, value in report.user_properties:
            if key == CPU_KEY:
                _cpu_by_test[report.nodeid] = value


def pytest_terminal_summary(terminalreporter):
    if not _cpu_by_test:
        return
    top = sorted(_cpu_by_test.items(), key=lambda kv: -kv[1])[:CPU_TOP]
    terminalreporter.write_sep("=", f"{len(top)} tests using the most CPU (theirs and their child processes'), of "
                                    f"{sum(_cpu_by_test.values()):.0f} CPU-s in all")  # fmt: skip
    for nodeid, seconds in top:
        terminalreporter.write_line(f"{seconds:8.2f}s cpu  {nodeid}")
