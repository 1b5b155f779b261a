"""The speaker models' weights are found in their packages and refused when their sha256 differs."""

from __future__ import annotations

import pytest

from models.speakers.packaged import SpeakerModelError, packaged_file


def test_a_wrong_sha256_is_refused() -> None:
    with pytest.raises(SpeakerModelError, match="expected 0000"):
        packaged_file("silero-vad", "silero_vad/data/silero_vad.jit", "0" * 64, "silero-vad==6.2.3")


def test_a_missing_package_names_what_to_install() -> None:
    with pytest.raises(SpeakerModelError, match="pip install"):
        packaged_file("no-such-speaker-package", "x.pt", "0" * 64, "no-such-speaker-package==1.0")


def test_a_missing_file_names_the_package() -> None:
    with pytest.raises(SpeakerModelError, match="missing from the package silero-vad"):
        packaged_file("silero-vad", "silero_vad/data/nothing.pt", "0" * 64, "silero-vad==6.2.3")
