"""sbom.spdx.json: an SPDX 2.3 document of what went into zfcpdump.image and zfcpdump.rd.

It is made from the manifest (and the runtime stage's recorded inputs), so it is as
reproducible as the manifest: the creation time is SOURCE_DATE_EPOCH and the document
namespace is derived from the artifacts' hashes. Licenses come from the packages' Debian
copyright files where those are machine-readable (DEP-5); otherwise they are NOASSERTION.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.dep5 import PUBLIC_DOMAIN

SBOM_FILE = "sbom.spdx.json"
DESCRIBED = ("zfcpdump.image", "zfcpdump.rd")
NAMESPACE_BASE = "https://spdx.org/spdxdocs/zfcpdump-build"  # the SPDX spec's suggested form


def _spdx_id(kind: str, name: str) -> str:
    return f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def _package(spdx_id: str, name: str, version: str, sha256: str | None, **extra: Any) -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": name,
        "versionInfo": version or "NOASSERTION",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": extra.pop("license", None) or "NOASSERTION",
        "copyrightText": "NOASSERTION",
    }
    if sha256:
        package["checksums"] = [{"algorithm": "SHA256", "checksumValue": sha256}]
    package.update(extra)
    return package


def _kernel_source(manifest: dict[str, Any]) -> dict[str, Any]:
    identity = manifest["kernel"]["source"]
    name = identity.get("package") or Path(str(identity.get("file") or "linux")).name
    version = manifest["kernel"]["version"]
    if identity.get("kind") == "debian" and identity.get("file", "").count("_") >= 2:
        version = identity["file"].split("_")[1]  # the Debian package version, e.g. 6.1.192-3
    return _package(
        "SPDXRef-Package-kernel-source",
        name,
        version,
        identity.get("sha256"),
        supplier="Organization: Debian" if identity.get("kind") == "debian" else "NOASSERTION",
        licenseDeclared="GPL-2.0-only WITH Linux-syscall-note",
        sourceInfo=f"kernel source of kind {identity.get('kind')}",
    )


def _tool_version(identity: str) -> str:
    found = re.findall(r"\d+\.\d+(?:\.\d+)?(?:-[\w.+~]+)?", identity)
    return found[0] if found else "NOASSERTION"  # the first: Debian's version, with its revision


def _writer_package(runtime_inputs: dict[str, Any], repo: Path) -> dict[str, Any]:
    try:
        version = metadata.version("zfcpdump-build")
    except metadata.PackageNotFoundError:
        version = "NOASSERTION"
    commit = _git_commit(repo)
    return _package(
        "SPDXRef-Package-zfcpdump-writer",
        "zfcpdump-writer",
        version,
        runtime_inputs.get("writer"),
        supplier="Organization: zfcpdump-build",
        licenseDeclared="NOASSERTION",
        sourceInfo=f"git commit {commit}" if commit else "not built from a git checkout",
    )


def _git_commit(repo: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and (repo / ".git").exists() else None


def _file_entry(spdx_id: str, path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "SPDXID": spdx_id,
        "fileName": f"./{path.name}",
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": hashlib.sha1(data).hexdigest()},
            {"algorithm": "SHA256", "checksumValue": hashlib.sha256(data).hexdigest()},
        ],
        "licenseConcluded": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    }


def build_sbom(
    manifest: dict[str, Any], runtime_inputs: dict[str, Any], folder: Path, repo: Path
) -> dict[str, Any]:
    """The SPDX document for the artifacts in *folder*, whose manifest is *manifest*."""
    files = {
        name: _file_entry(_spdx_id("File", name), folder / name)
        for name in DESCRIBED
        if (folder / name).is_file()
    }
    image = files["zfcpdump.image"]["SPDXID"]
    rd = files["zfcpdump.rd"]["SPDXID"] if "zfcpdump.rd" in files else image  # built in: the image holds it
    relationships = [_rel("SPDXRef-DOCUMENT", "DESCRIBES", f["SPDXID"]) for f in files.values()]
    packages = [_kernel_source(manifest), _writer_package(runtime_inputs, repo)]
    relationships += [
        _rel(image, "GENERATED_FROM", "SPDXRef-Package-kernel-source"),
        _rel(rd, "GENERATED_FROM", "SPDXRef-Package-zfcpdump-writer"),
    ]
    for info in manifest["runtime"]["packages"]:
        spdx_id = _spdx_id("Package", f"{info['name']}-{info['arch']}")
        packages.append(
            _package(
                spdx_id,
                info["name"],
                info["version"],
                info["sha256"],
                license=info.get("license"),
                supplier="Organization: Debian" if info["file"].endswith(".deb") else "NOASSERTION",
                packageFileName=info["file"],
            )
        )
        relationships.append(_rel(rd, "GENERATED_FROM", spdx_id))
    cpython = runtime_inputs.get("cpython")
    if cpython:
        packages.append(
            _package(
                "SPDXRef-Package-cpython-source",
                "cpython",
                "3.11",
                cpython["source_sha256"],
                licenseDeclared="Python-2.0",
                sourceInfo="the static interpreter in /init is built from this tarball",
            )
        )
        relationships.append(_rel(rd, "GENERATED_FROM", "SPDXRef-Package-cpython-source"))
    prefix = str(manifest["kernel"]["toolchain"].get("prefix", ""))
    for tool, identity in sorted(manifest["kernel"]["toolchain"].items()):
        if tool in ("gcc", "binutils") and isinstance(identity, str):
            spdx_id = _spdx_id("Package", f"build-{tool}")
            packages.append(_package(spdx_id, prefix + tool, _tool_version(identity), None, comment=identity))
            relationships.append(_rel(spdx_id, "BUILD_DEPENDENCY_OF", image))
            if cpython:
                relationships.append(_rel(spdx_id, "BUILD_DEPENDENCY_OF", rd))
    digest = hashlib.sha256(json.dumps(sorted(files.items()), sort_keys=True).encode()).hexdigest()
    epoch = int(manifest["source_date_epoch"])
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"zfcpdump-{manifest['recipe']['name']}",
        "documentNamespace": f"{NAMESPACE_BASE}/{manifest['recipe']['name']}-{digest}",
        "creationInfo": {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
            "creators": [f"Tool: zfcpdump-build-{packages[1]['versionInfo']}"],
        },
        "packages": packages,
        "files": list(files.values()),
        "relationships": relationships,
        "hasExtractedLicensingInfos": [
            {
                "licenseId": PUBLIC_DOMAIN,
                "extractedText": "Public domain (Debian copyright short name public-domain)",
                "name": "public-domain",
            }
        ],
    }


def _rel(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def write(document: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
