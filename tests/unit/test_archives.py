import io
import tarfile

import pytest

from lightgbm_container.errors import BadRequest, ModelNotFound
from lightgbm_container.multi_model.archives import resolve_model_path
from lightgbm_container.safe_tar import extract_archive


@pytest.mark.parametrize("name", ["", "a\x00b", "/etc/passwd", "..", "a/../../b", "./x", "\\windows"])
def test_names_that_could_escape_are_refused(tmp_path, name):
    with pytest.raises(BadRequest):
        resolve_model_path(tmp_path, name)


def test_missing_model_is_404_and_nested_names_resolve(tmp_path):
    with pytest.raises(ModelNotFound):
        resolve_model_path(tmp_path, "absent")
    (tmp_path / "team" / "m1").mkdir(parents=True)
    assert resolve_model_path(tmp_path, "team/m1") == (tmp_path / "team" / "m1").resolve()


def _tar(path, entries):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_size_limit_and_atomic_reuse(tmp_path):
    archive = tmp_path / "m.tar.gz"
    _tar(archive, [("model/model.txt", b"x" * 2048)])
    with pytest.raises(BadRequest, match="expands to more than"):
        extract_archive(archive, tmp_path / "out-small", max_bytes=1024)
    assert not (tmp_path / "out-small").exists()
    destination = extract_archive(archive, tmp_path / "out", max_bytes=1 << 20)
    assert (destination / "model" / "model.txt").read_bytes() == b"x" * 2048
    assert extract_archive(archive, tmp_path / "out", max_bytes=1 << 20) == destination
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".extract-")] == []
