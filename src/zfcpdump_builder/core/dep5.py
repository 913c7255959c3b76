"""Licenses from Debian copyright files in the machine-readable format (DEP-5)."""

from __future__ import annotations

import re

PUBLIC_DOMAIN = "LicenseRef-public-domain"
# Debian copyright short names -> SPDX identifiers (DEP-5 appendix), for those seen in the rd.
DEBIAN_TO_SPDX = {
    "Expat": "MIT",
    "MIT": "MIT",
    "Zlib": "Zlib",
    "X11": "X11",
    "PSF-2": "Python-2.0",
    "Python-2.0": "Python-2.0",
    "BSD-2-clause": "BSD-2-Clause",
    "BSD-3-clause": "BSD-3-Clause",
    "GPL-2": "GPL-2.0-only",
    "GPL-2+": "GPL-2.0-or-later",
    "GPL-3+": "GPL-3.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "public-domain": PUBLIC_DOMAIN,
}


def dep5_license(text: str) -> str | None:
    """The SPDX expression of a DEP-5 copyright file's `Files: *` paragraph, or None when the
    file is not machine-readable or names a license this table cannot translate."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if not paragraphs or not re.match(r"Format:\s*https?://\S*copyright-format", paragraphs[0]):
        return None
    for paragraph in paragraphs[1:]:
        fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", paragraph, re.MULTILINE))
        if fields.get("Files", "").split() == ["*"] and fields.get("License"):
            return _spdx_expression(fields["License"])
    return None


def _spdx_expression(debian: str) -> str | None:
    words = debian.replace(",", " ").split()
    out = []
    for word in words:
        if word.lower() in ("or", "and"):
            out.append(word.upper())
        elif word in DEBIAN_TO_SPDX:
            out.append(DEBIAN_TO_SPDX[word])
        else:
            return None
    return " ".join(out) if out and out[-1] not in ("OR", "AND") else None
