"""The real download code against an HTTP server on 127.0.0.1: good, corrupt, truncated, unreachable."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from ganzoo.download import DownloadError, download
from ganzoo.errors import GanzooError


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()

    def do_GET(self):  # noqa: N802
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path in self.truncate else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.files, Handler.truncate = {}, set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler
    httpd.shutdown()
    httpd.server_close()


def test_good_download_is_verified_and_placed(server, tmp_path):
    url, handler = server
    handler.files["/a.bin"] = b"x" * 5000
    sha = hashlib.sha256(b"x" * 5000).hexdigest()
    path = download(f"{url}/a.bin", tmp_path / "a.bin", sha256=sha, progress=False)
    assert path.read_bytes() == b"x" * 5000
    assert not list(tmp_path.glob("*.part"))


def test_checksum_mismatch_leaves_nothing_behind(server, tmp_path):
    url, handler = server
    handler.files["/a.bin"] = b"changed"
    with pytest.raises(DownloadError, match="does not match its checksum"):
        download(f"{url}/a.bin", tmp_path / "a.bin", md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_is_detected(server, tmp_path):
    url, handler = server
    handler.files["/big.bin"] = b"y" * 100_000
    handler.truncate.add("/big.bin")
    with pytest.raises(DownloadError, match="place it at"):
        download(f"{url}/big.bin", tmp_path / "big.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_server_down_names_url_and_destination(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    with pytest.raises(DownloadError) as info:
        download(f"http://127.0.0.1:{port}/x.gz", tmp_path / "data" / "raw" / "x.gz", progress=False, timeout=5)
    assert f"127.0.0.1:{port}/x.gz" in str(info.value) and str(tmp_path / "data" / "raw" / "x.gz") in str(info.value)
    assert not (tmp_path / "data").exists()  # the folders made for the download went with it
    with pytest.raises(DownloadError):
        download(f"http://127.0.0.1:{port}/x.gz", tmp_path / "mine" / "new" / "x.gz", progress=False, timeout=5)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]  # a folder that existed stays


def _idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_mnist_downloads_from_a_mirror_and_checks_md5(server, tmp_path):
    from ganzoo.data import idx

    url, handler = server
    images, labels = _idx_gz(np.zeros((5, 28, 28))), _idx_gz(np.arange(5))
    handler.files["/m/train-images-idx3-ubyte.gz"] = images
    handler.files["/m/train-labels-idx1-ubyte.gz"] = labels
    source = idx.IdxSource("Tiny", (f"{url}/m/",), {
        "train-images-idx3-ubyte": hashlib.md5(images).hexdigest(),
        "train-labels-idx1-ubyte": hashlib.md5(labels).hexdigest(),
    }, ())
    x, y = idx.load_idx_dataset(source, tmp_path)
    assert x.shape == (5, 1, 28, 28) and y.tolist() == [0, 1, 2, 3, 4]
    assert (tmp_path / "Tiny" / "raw" / "train-images-idx3-ubyte.gz").is_file()


def test_mnist_that_no_mirror_gives_says_why_for_each_mirror(server, tmp_path):
    """The first mirror down and the second serving a file that fails its MD5: both reasons are told, not only the
    first (which would hide that the file did arrive, from the second)."""
    from ganzoo.data import idx

    url, handler = server
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        handler.files["/m/train-images-idx3-ubyte.gz"] = _idx_gz(np.zeros((5, 28, 28)))
        source = idx.IdxSource("MNIST", (down, f"{url}/m/"), idx.MNIST.md5, ())
        with pytest.raises(GanzooError) as info:
            idx.load_idx_dataset(source, tmp_path)
    message = str(info.value)
    assert f"could not be downloaded (from {down}: " in message
    assert f"; from {url}/m/: it did not match its checksum); put train-images-idx3-ubyte.gz and " in message


def test_mnist_offline_says_where_to_put_the_files(tmp_path):
    from ganzoo.data import idx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = idx.IdxSource("MNIST", (f"http://127.0.0.1:{port}/",), idx.MNIST.md5, ())
    with pytest.raises(GanzooError) as info:
        idx.load_idx_dataset(source, tmp_path)
    raw = Path(tmp_path) / "MNIST" / "raw"
    assert str(info.value).startswith(f"MNIST is not in {raw} and could not be downloaded (from http://127.0.0.1:{port}/: ")
    assert str(info.value).endswith("); put train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz there, or point "
                                    "--data-root / GANZOO_DATA at a folder that has MNIST/raw/.")


def test_cifar_download_and_extract(server, tmp_path):
    import io
    import tarfile

    from ganzoo.data import cifar

    url, handler = server
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            payload = np.zeros((2, 3073), dtype=np.uint8).tobytes()
            info = tarfile.TarInfo(f"{cifar.FOLDER}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    handler.files["/cifar.tgz"] = buffer.getvalue()
    folder = cifar.ensure_extracted(tmp_path, url=f"{url}/cifar.tgz", md5=hashlib.md5(buffer.getvalue()).hexdigest())
    images, _ = cifar.read_batches(folder)
    assert images.shape == (10, 3, 32, 32)


def test_the_withdrawn_cityscapes_says_where_to_get_it_without_trying_to_download(tmp_path):
    from ganzoo.registry import get_dataset

    with pytest.raises(GanzooError) as info:
        get_dataset("pix2pix-cityscapes").load(tmp_path, 64, 3)
    message = str(info.value)
    assert message.startswith("The pix2pix authors no longer distribute Cityscapes for licence reasons; download it "
                              "from https://cityscapes-dataset.com") and message.endswith("(A|B side by side).")
    assert not any(tmp_path.iterdir())  # nothing downloaded, nothing created


def test_cifar_offline_names_the_archive_and_the_extracted_folder(tmp_path):
    from ganzoo.data import cifar

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(GanzooError) as info:
        cifar.ensure_extracted(tmp_path, url=f"http://127.0.0.1:{port}/c.tgz", md5=None)
    message = str(info.value)
    assert message.startswith(f"CIFAR-10 is not in {tmp_path / cifar.FOLDER} and could not be downloaded "
                              f"(http://127.0.0.1:{port}/c.tgz: ")
    assert message.endswith(f"); put cifar-10-binary.tar.gz in {tmp_path}, or its extracted {cifar.FOLDER}/ folder "
                            "there, or point --data-root / GANZOO_DATA at a folder that has it.")
