"""Host-side inspect/extract, the builder adaptor, the entry point's CLI and the bench smoke run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from tests.support.zipldisk import ckm
from writer_helpers import REPO, RecordingSystem

from zfcpdump_builder.deploy import dumpdisk
from zfcpdump_writer import diskinfo
from zfcpdump_writer.layout import BUSY_MARKER
from zfcpdump_writer.main import main, parse_args


def test_inspect_states(env) -> None:  # noqa: ANN001
    info = diskinfo.inspect(str(env.sda))
    assert info["error"] is None and info["state"] == "empty" and info["csum_ok"]
    assert info["partition"] == env.disk.part_number and info["dump_size"] == env.disk.dump_size
    code, _ = env.run()
    assert code == 0
    info = diskinfo.inspect(str(env.sda))
    assert info["state"] == "complete" and info["dump_bytes"] == env.core.size and info["cpus"] == 2
    assert [ld["paddr"] for ld in info["loads"]] == [ld.paddr for ld in env.core.loads]


def test_inspect_a_dump_cut_off_before_its_last_superblock_write(env) -> None:  # noqa: ANN001
    """The header went in, the superblock did not: whole (as zgetdump says), with a note."""
    assert env.run()[0] == 0
    env.disk.set_superblock(csum=ckm(BUSY_MARKER.ljust(4096, b"\0")))  # as marked busy, fresh disk
    info = diskinfo.inspect(str(env.sda))
    assert not info["csum_ok"] and info["state"] == "complete" and info["note"] == diskinfo.CUT_AFTER_HEADER
    env.disk.write(env.disk.dump_start + 4, b"\x01")  # a damaged ELF header: not ours to vouch for
    assert diskinfo.inspect(str(env.sda))["state"] == "invalid"


def test_inspect_busy_and_extract_refused(env) -> None:  # noqa: ANN001
    class Fails(RecordingSystem):
        def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
            if len(buf) > 4096:
                raise OSError(5, "Input/output error")
            return super().pwrite(fd, buf, offset)

    assert env.run(Fails)[0] == 1
    assert diskinfo.inspect(str(env.sda))["state"] == "busy"
    out = env.root.parent / "x.elf"
    try:
        dumpdisk.extract(env.sda, out)
    except dumpdisk.DumpDiskError as exc:
        assert "state: busy" in str(exc)
    else:
        raise AssertionError("extract of a busy dump must fail")


def test_extract_equals_vmcore(env) -> None:  # noqa: ANN001
    assert env.run()[0] == 0
    out = env.root.parent / "x.elf"
    assert dumpdisk.extract(env.sda, out) == env.core.size
    assert out.read_bytes() == env.vmcore_bytes()


def test_inspect_not_a_dump_disk(tmp_path) -> None:  # noqa: ANN001
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\0" * 65536)
    info = dumpdisk.inspect(junk)
    assert "no zIPL MBR" in info["error"]
    assert dumpdisk.inspect(tmp_path / "missing")["error"].startswith("cannot open")


def test_dumpdisk_cli(env, capsys) -> None:  # noqa: ANN001
    from zfcpdump_builder import cli

    assert env.run()[0] == 0
    assert cli.main(["dumpdisk", "inspect", str(env.sda), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "dumpdisk" and events[0]["state"] == "complete"
    assert events[-1]["event"] == "result"


def test_parse_args() -> None:
    assert parse_args(["--root", "/r", "--config=/c"]) == {"root": "/r", "config": "/c", "system": False}
    for bad in (["--root"], ["--bogus"], ["-x"]):
        try:
            parse_args(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_main_refuses_live_system(capsys) -> None:  # noqa: ANN001
    assert main([]) == 3
    assert "refusing to run on a live system" in capsys.readouterr().err
    assert main(["--nope"]) == 3


def test_python_m_entry_isolated(env) -> None:  # noqa: ANN001
    """`python -I -S -B -m zfcpdump_writer --root` works and imports only what we report."""
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); from zfcpdump_writer.main import main; "
        "code = main(sys.argv[2:]); print('MODULES', ' '.join(sorted(sys.modules))); sys.exit(code)"
    )
    res = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", probe, str(REPO / "src"), "--root", str(env.root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Dump successful" in res.stdout
    modules = set(res.stdout.split("MODULES", 1)[1].split())
    for heavy in (
        "argparse",
        "logging",
        "subprocess",
        "re",
        "typing",
        "dataclasses",
        "signal",
        "inspect",
        "contextlib",
        "collections",
        "threading",
        "ctypes",
        "json",
    ):
        assert heavy not in modules, heavy
    assert env.dump_bytes() == env.vmcore_bytes()


def test_bench_smoke(tmp_path) -> None:  # noqa: ANN001
    spec = importlib.util.spec_from_file_location("writer_throughput", REPO / "bench/writer_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(bench)
    res = bench.run(64 << 20, 1, tmp_path / "bench")
    assert res["last_dump_valid"] is True
    assert set(res["results"]) == set(bench.METHODS)
    for method, r in res["results"].items():
        assert r["mb_s"] > 0 and len(r["seconds"]) == 1, method
    assert 0 < res["results"]["writer_direct"]["peak_private_kib"] < 64 << 10


def _digest(path) -> str:  # noqa: ANN001
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_extract_never_overwrites_its_own_source(env, tmp_path) -> None:  # noqa: ANN001
    """`dumpdisk extract IMG IMG` (or via a symlink or a hard link) is refused; IMG is untouched."""
    import os

    from support.buildcli import run_cli

    assert env.run()[0] == 0
    before = _digest(env.sda)
    os.symlink(env.sda, tmp_path / "alias")
    os.link(env.sda, tmp_path / "hard")
    for out in (env.sda, tmp_path / "alias", tmp_path / "hard"):
        run = run_cli("dumpdisk", "extract", str(env.sda), str(out), "--force")
        assert run.code == 7, run.stderr
        assert "refusing" in run.error()["message"] and run.events[-1]["event"] == "result"
    assert _digest(env.sda) == before and diskinfo.inspect(str(env.sda))["state"] == "complete"


def test_extract_onto_the_file_behind_a_loop_device_is_refused(env) -> None:  # noqa: ANN001
    from support.loopdev import LoopDevice

    assert env.run()[0] == 0
    before = _digest(env.sda)
    loop = LoopDevice(env.sda)
    try:
        dumpdisk.extract(loop.dev, env.sda, force=True)
    except dumpdisk.DumpDiskError as exc:
        assert "file behind the dump device" in str(exc)
    else:
        raise AssertionError("extracting onto the loop device's backing file must fail")
    finally:
        loop.close()
    assert _digest(env.sda) == before


def test_a_failed_extract_leaves_an_existing_out_alone(env, tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "x").mkdir()
    out = tmp_path / "x" / "old.elf"
    out.write_bytes(b"an earlier extract")
    try:
        dumpdisk.extract(env.sda, out, force=True)  # the disk holds no dump yet
    except dumpdisk.DumpDiskError:
        pass
    else:
        raise AssertionError("an empty dump disk has nothing to extract")
    assert out.read_bytes() == b"an earlier extract"
    assert sorted(p.name for p in out.parent.iterdir()) == ["old.elf"]
    assert env.run()[0] == 0
    try:
        dumpdisk.extract(env.sda, out)
    except dumpdisk.DumpDiskError as exc:
        assert "--force" in (exc.hint or "")
    else:
        raise AssertionError("an existing OUT needs --force")
    assert dumpdisk.extract(env.sda, out, force=True) == env.core.size
