"""The README's recipe-key table is generated from the validator's schema: keep them equal."""

from __future__ import annotations

import re

from support.buildcli import ROOT
from zfcpdump_builder.recipe.schema import markdown_table


def test_readme_recipe_keys_match_the_schema() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- recipe-keys:begin -->\n(.*)\n<!-- recipe-keys:end -->", readme, re.S)
    assert match, "README lost its recipe-keys markers"
    assert match.group(1) == markdown_table(), "run: ./build.py recipe-keys --markdown"
