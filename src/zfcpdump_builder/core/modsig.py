"""The module-signature trailer that the kernel's sign-file appends and s390 secure IPL checks."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from .errors import SignatureError

MAGIC = b"~Module signature appended~\n"
INFO = struct.Struct(">BBBBB3xI")  # struct module_signature: algo, hash, id_type, lengths, sig_len
PKEY_ID_PKCS7 = 2


def split_signature(image: Path) -> tuple[bytes, bytes] | None:
    """(the image without its signature, the PKCS#7 DER), or None when it is not signed."""
    data = image.read_bytes()
    if not data.endswith(MAGIC) or len(data) < len(MAGIC) + INFO.size:
        return None
    info_at = len(data) - len(MAGIC) - INFO.size
    *_, id_type, _signer, _key_id, sig_len = INFO.unpack_from(data, info_at)
    if id_type != PKEY_ID_PKCS7 or sig_len > info_at:
        raise SignatureError(f"{image} has a module-signature trailer that is not PKCS#7 or is cut short")
    return data[: info_at - sig_len], data[info_at - sig_len : info_at]


def unsigned_sha256(image: Path) -> str | None:
    parts = split_signature(image)
    return hashlib.sha256(parts[0]).hexdigest() if parts else None
