"""Get a dataset onto disk: fetch its archive (resumable, checksummed), unpack it safely, lay it
out as MVTec-style category folders and move them into the data root only once complete.

Generic: it knows no dataset by name. A dataset module's ``DownloadInfo`` says where its
archive is and how it becomes category folders (``bench.data.catalog.download_dataset``)."""

from __future__ import annotations

import gzip
import hashlib
import logging
import lzma
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests

from bench.data.base import DownloadInfo
from bench.data.fingerprint import write_manifest
from bench.data.folder import is_category_dir
from bench.errors import BenchError
from bench.progress import progress as progress_bar

log = logging.getLogger(__name__)

_CHUNK = 1 << 20  # for hashing
_NET_CHUNK = 1 << 16  # small, as a dropped connection loses the chunk being read
_TIMEOUT = (15, 60)  # seconds to connect, seconds of silence while reading
_MAX_ATTEMPTS = 5  # tries while the connection keeps dropping mid-transfer
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2")
# What a truncated or damaged archive raises (BadGzipFile is an OSError, so it is named here).
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
            gzip.BadGzipFile)


class _Restart(Exception):
    """The server cannot continue the .part file; download from the start."""


class _Interrupted(Exception):
    """The connection dropped mid-transfer; the .part file can be resumed."""


# ---------------------------------------------------------------------------------- fetching


def fetch_archive(
    source: str, dest: Path, *, sha256: str | None = None, progress: bool = True
) -> Path:
    """The path of the archive ``source`` (an http(s) URL, a file path or a file:// URL).

    URLs are downloaded to ``dest`` (resuming ``dest.part`` if a previous try was cut off);
    local files are used where they are. With ``sha256`` the file's checksum is verified.
    """
    local = _local_path(source)
    if local is not None:
        if not local.is_file():
            raise BenchError(f"archive {local} does not exist; check the path passed with --from.")
        if sha256 is not None and _sha256(local) != sha256.lower():
            raise BenchError(
                f"{local} does not match the expected SHA-256 checksum, so it is corrupt or a "
                "different file; download the archive again."
            )
        return local

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        if sha256 is None or _sha256(dest) == sha256.lower():
            log.info("using the archive already downloaded at %s", dest)
            return dest
        log.warning("cached %s fails its checksum; moved to %s, downloading again",
                    dest, _set_aside(dest))
    _download(source, dest, progress)
    if sha256 is not None and _sha256(dest) != sha256.lower():
        bad = _set_aside(dest)
        raise BenchError(
            f"the file downloaded from {source} is corrupt (SHA-256 mismatch) and was moved to "
            f"{bad}; delete it and run again to download afresh, or pass --from FILE."
        )
    return dest


def _local_path(source: str) -> Path | None:
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise BenchError(f"cannot fetch {source}: only http(s) URLs and local files are supported.")
    return Path(source)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _set_aside(path: Path) -> Path:
    """Rename a bad file so it is never silently reused."""
    bad = path.with_name(path.name + ".corrupt")
    path.replace(bad)
    return bad


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _download(url: str, dest: Path, progress: bool) -> None:
    part = dest.with_suffix(dest.suffix + ".part")
    host = urlparse(url).hostname
    drops = 0
    while True:
        try:
            _fetch_into(url, part, dest.name, progress)
            break
        except _Restart:
            part.unlink(missing_ok=True)
        except _Interrupted as err:
            drops += 1
            if drops >= _MAX_ATTEMPTS:
                raise BenchError(
                    f"the download from {host} broke off {drops} times ({err}); run again to "
                    f"resume {part}, or download {url} by hand and pass --from FILE."
                ) from None
            log.warning("download interrupted (%s); resuming at byte %d", err, _size(part))
        except requests.HTTPError as err:
            raise BenchError(
                f"{host} answered HTTP {err.response.status_code} for {url}; download the "
                "archive by hand and pass --from FILE."
            ) from None
        except requests.RequestException as err:
            raise BenchError(
                f"could not reach {host} ({type(err).__name__}); check the network, or download "
                f"{url} by hand and pass --from FILE."
            ) from None
    part.replace(dest)


def _fetch_into(url: str, part: Path, label: str, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (all of it when the server ignores the Range)."""
    offset = _size(part)
    headers = {"Accept-Encoding": "identity"}  # byte offsets must count raw file bytes
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with requests.get(url, headers=headers, stream=True, timeout=_TIMEOUT) as reply:
        if offset and (reply.status_code == 416 or
                       reply.status_code == 206 and _range_start(reply) != offset):
            raise _Restart
        reply.raise_for_status()
        if reply.status_code != 206:
            offset = 0  # a plain 200 carries the whole file
        length = reply.headers.get("Content-Length", "")
        total = offset + int(length) if length.isdigit() else None
        with open(part, "ab" if offset else "wb") as out, progress_bar(
            total, label, enabled=progress, initial=offset, unit="B", unit_scale=True,
            unit_divisor=1024,
        ) as bar:
            try:
                for chunk in reply.iter_content(_NET_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except requests.RequestException as err:
                raise _Interrupted(type(err).__name__) from err
    if total is not None and _size(part) < total:
        raise _Interrupted(f"got {_size(part)} of {total} bytes")


def _range_start(reply: requests.Response) -> int | None:
    # Content-Range: bytes START-END/TOTAL
    value = reply.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


# ---------------------------------------------------------------------------------- unpacking


def safe_extract(archive: Path, target: Path) -> None:
    """Unpack a zip or tar archive into ``target``, refusing entries that would land outside it."""
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise BenchError(f"archive {archive} does not exist; download it again.")
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    name = archive.name.lower()
    try:
        if name.endswith(".zip") or zipfile.is_zipfile(archive):
            _extract_zip(archive, root)
        elif name.endswith(_TAR_SUFFIXES) or tarfile.is_tarfile(archive):
            _extract_tar(archive, root)
        else:
            raise BenchError(f"{archive} is neither a zip nor a tar archive; pass the dataset's "
                             "original archive.")
    except _TAR_FILTER_ERROR as err:
        raise _unsafe(archive, err.tarinfo.name) from None
    except _CORRUPT as err:
        raise BenchError(
            f"archive {archive} is corrupt or incomplete ({type(err).__name__}); delete it and "
            "download it again."
        ) from None


# tarfile's "data" filter (Python 3.11.4 and later) where this Python has it; 3.11.0-3.11.3 have
# none, and the checks of ``_extract_tar`` refuse what it would (paths or links leading out,
# special files) on any Python.
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
_TAR_FILTER_ERROR = getattr(tarfile, "FilterError", ())


def _unsafe(archive: Path, member: str) -> BenchError:
    return BenchError(
        f"archive {archive} holds the entry {member!r} that points outside the folder it is "
        "unpacked into; refusing to unpack it: get the archive from the dataset's official source."
    )


def _check_inside(root: Path, path: Path, archive: Path, member: str) -> None:
    # resolve() also follows links unpacked earlier, so a link cannot be used as a way out.
    if not path.resolve().is_relative_to(root):
        raise _unsafe(archive, member)


def _extract_zip(archive: Path, root: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():  # check everything before writing anything
            _check_inside(root, root / info.filename, archive, info.filename)
        zf.extractall(root)


def _extract_tar(archive: Path, root: Path) -> None:
    # One pass (check, then extract each member) so a large .tar.xz is decompressed only once.
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            _check_inside(root, root / member.name, archive, member.name)
            if member.issym():
                _check_inside(root, (root / member.name).parent / member.linkname, archive,
                              member.name)
            elif member.islnk():
                _check_inside(root, root / member.linkname, archive, member.name)
            elif not (member.isfile() or member.isdir()):
                raise BenchError(f"archive {archive} holds the special file {member.name!r}; "
                                 "refusing to unpack it: get the dataset's original archive.")
            tf.extract(member, root, **_TAR_FILTER)


# ---------------------------------------------------------------------------------- importing


def import_dataset(
    name: str,
    info: DownloadInfo,
    categories: tuple[str, ...],
    data_root: Path,
    source: str | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download (or import from ``source``, a URL or local archive) the dataset ``name``.

    Does nothing when every category is already under ``data_root`` (unless ``force``).
    Archives are cached in ``data_root/.downloads``. Categories are built in a temporary folder
    inside ``data_root`` and renamed into place only when complete, so an interrupted import
    never leaves a half-written category; categories already present are kept unless ``force``.
    A ``.<name>_verified`` marker records a completed import.
    """
    data_root = Path(data_root)
    marker = data_root / f".{name}_verified"
    if not force and all(is_category_dir(data_root / c) for c in categories):
        if not marker.is_file():
            log.info("%s is already under %s (put there by hand); pass force=True to re-import",
                     name, data_root)
        return data_root

    data_root.mkdir(parents=True, exist_ok=True)
    archive = fetch_archive(source or info.url, data_root / ".downloads" / info.archive_name,
                            sha256=info.sha256, progress=progress)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-import-", dir=data_root))
    try:
        log.info("unpacking %s", archive)
        safe_extract(archive, work / "unpacked")
        staging = work / "staging"
        staging.mkdir()
        info.lay_out(work / "unpacked", staging)
        placed = [c for c in categories
                  if _move_into_place(staging / c, data_root / c, work, force)]
        marker.write_text(
            f"source: {source or info.url}\narchive: {archive}\n"
            f"imported: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
        )
        # The files just verified and laid out (categories kept from before are not in it);
        # records compare their split's files with this list (bench.data.fingerprint).
        write_manifest(data_root, name, placed, source or info.url)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("%s is ready under %s", name, data_root)
    return data_root


def _move_into_place(built: Path, dest: Path, work: Path, force: bool) -> bool:
    """Whether ``built`` was moved into place (False: the category already there was kept)."""
    if dest.exists() or dest.is_symlink():
        if not force and is_category_dir(dest):
            log.info("keeping %s, which is already there", dest)
            return False
        if not force:
            raise BenchError(f"{dest} exists but is not a dataset category folder; move it away "
                             "or pass --force to replace it.")
        dest.rename(work / f"replaced-{dest.name}")  # deleted with the work folder
    built.rename(dest)
    return True
