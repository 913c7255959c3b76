"""Secure-IPL signatures: zfcpdump.image with the appended signature that s390 secure IPL
checks, written by the kernel tree's own scripts/sign-file (the module-signature format).

sign-file is built in a fresh O= directory of the same kernel tree and config, kept as the
'signtool' object. With CMS_NOATTR no signing time goes in, so an RSA key gives the same
signed image on every build.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..core.errors import SignatureError
from ..core.hostrun import run_logged
from ..core.store import StageOutput, Store, file_sha256
from ..core.toolchain import Toolchain
from .kernel import make_command
from .source import SourceTree


def signtool_inputs(source: SourceTree, config: StageOutput, toolchain: Toolchain) -> dict[str, Any]:
    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "source": source.identity,
        "config_sha256": file_sha256(config.path / "config"),
        "host": [gcc, openssl],
        "toolchain": toolchain.identity(),
    }


def sign_file_tool(
    source: SourceTree, config: StageOutput, toolchain: Toolchain, store: Store, logs: Path
) -> Path:
    """scripts/sign-file of *source*, built once per tree, config and host toolchain."""
    inputs = signtool_inputs(source, config, toolchain)

    def produce(out: Path) -> dict[str, Any]:
        objdir = out / "objdir"
        objdir.mkdir()
        shutil.copy2(config.path / "config", objdir / ".config")
        # sign-file is built when MODULE_SIG_FORMAT is set; the zfcpdump kernel has no modules.
        command = make_command(source, objdir, toolchain, "CONFIG_MODULE_SIG_FORMAT=y", "scripts")
        run_logged(command, logs / "sign-file.log", {"LC_ALL": "C"}, "building scripts/sign-file")
        shutil.copy2(objdir / "scripts/sign-file", out / "sign-file")
        shutil.rmtree(objdir)
        return {"sign_file_sha256": file_sha256(out / "sign-file")}

    return store.produce("signtool", inputs, produce).path / "sign-file"


def sign_image(tool: Path, image: Path, key: Path, cert: Path) -> None:
    """Append the secure-IPL signature to *image*, in place."""
    done = subprocess.run(
        [str(tool), "sha256", str(key), str(cert), str(image)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise SignatureError(
            f"sign-file could not sign {image.name} with {key}: {done.stderr.strip()[-300:]}",
            hint="use a PEM private key and its PEM certificate",
        )
