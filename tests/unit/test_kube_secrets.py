"""MD5 password references: files (a mounted Secret) and their errors, which never carry the value."""

import pytest

from bgpnet.config import PasswordRef
from bgpnet.kube.secrets import PasswordReader, PasswordUnavailable
from bgpnet.model import Md5Password


def test_file_password_is_read_without_its_trailing_newline(tmp_path):
    (tmp_path / "tor").write_text("s3cret\n")
    assert PasswordReader(None).read(PasswordRef(file=str(tmp_path / "tor"))) == Md5Password("s3cret")


@pytest.mark.parametrize(("content", "reason"), [(b"", "empty"), (b"x" * 81, "longer than 80 bytes"),
                                                 (b"\xff\xfe", "not UTF-8 text")])
def test_unusable_passwords_are_refused_by_reason(tmp_path, content, reason):
    (tmp_path / "tor").write_bytes(content)
    with pytest.raises(PasswordUnavailable, match=reason):
        PasswordReader(None).read(PasswordRef(file=str(tmp_path / "tor")))


def test_missing_file_and_missing_client_name_the_reference(tmp_path):
    with pytest.raises(PasswordUnavailable, match=f"file {tmp_path}/nope"):
        PasswordReader(None).read(PasswordRef(file=str(tmp_path / "nope")))
    with pytest.raises(PasswordUnavailable, match="secret ns/s key k.*no Kubernetes API client"):
        PasswordReader(None).read(PasswordRef("ns", "s", "k"))
