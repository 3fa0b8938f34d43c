"""The encoder options against segment-anything's own forward: chunked and fused attention equal
it to float rounding; bf16 stays within the 1 % embedding error that makes it a default; bf16 is
chosen only where /proc/cpuinfo says the CPU computes it natively.

A small ImageEncoderViT (SAM's class: windowed blocks, a global block with relative positions,
256 x 256 input -> 16 x 16 tokens) keeps bf16, which is emulated and slow on CPUs without
AMX / AVX512-bf16, to seconds; the chunk size is smaller than the token count so chunking is used."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed; SAM tests need it")
pytest.importorskip("segment_anything", reason="segment-anything is not installed")

from seg_qgis_plugin.core.models.sam_encoder import (  # noqa: E402
    EncoderOptions, EncoderRunner, cpu_has_fast_bf16, default_precision)


class _Sam:
    def __init__(self, image_encoder):
        self.image_encoder = image_encoder


@pytest.fixture(scope="module")
def small():
    from segment_anything.modeling import ImageEncoderViT

    torch.manual_seed(0)
    encoder = ImageEncoderViT(img_size=256, patch_size=16, embed_dim=96, depth=3, num_heads=3, mlp_ratio=4.0,
                              out_chans=64, qkv_bias=True, use_rel_pos=True, window_size=7, global_attn_indexes=(2,))
    with torch.no_grad():  # segment-anything zero-initialises the relative positions; give them weight
        for block in encoder.blocks:
            block.attn.rel_pos_h.normal_(0, 0.5)
            block.attn.rel_pos_w.normal_(0, 0.5)
    x = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        reference = encoder.eval()(x)
    return _Sam(encoder), x, reference


def _error(a, b) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("options", [EncoderOptions(chunk=100), EncoderOptions(attention="sdpa", chunk=100),
                                     EncoderOptions(channels_last=True, chunk=64)], ids=["chunked", "sdpa", "channels_last"])
def test_fp32_options_equal_the_reference(small, options):
    model, x, reference = small
    out = EncoderRunner(model, "cpu", options)(x)
    assert out.shape == reference.shape and out.dtype == torch.float32
    assert _error(out, reference) < 1e-5


@pytest.mark.parametrize("precision", ["bf16", "bf16-weights"])
def test_bf16_stays_within_one_percent(small, precision):
    model, x, reference = small
    out = EncoderRunner(model, "cpu", EncoderOptions(precision=precision, chunk=100))(x)
    error = _error(out, reference)
    assert 1e-5 < error <= 0.01  # really computed in bf16, and within the bound
    assert next(model.image_encoder.parameters()).dtype == torch.float32  # the model itself is untouched


def test_bf16_is_the_default_only_where_the_cpu_has_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SEG_PRECISION")
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu avx avx2\n")
    assert cpu_has_fast_bf16(str(amx)) and not cpu_has_fast_bf16(str(plain))
    assert not cpu_has_fast_bf16(str(tmp_path / "absent"))
    assert default_precision("cuda") == "bf16" and default_precision("mps") == "fp32"
    assert default_precision("cpu") == ("bf16" if cpu_has_fast_bf16() else "fp32")
    monkeypatch.setenv("SEG_PRECISION", "bf16")
    assert default_precision("cpu") == "bf16"


def test_unknown_options_are_refused(small):
    with pytest.raises(ValueError):
        EncoderRunner(small[0], "cpu", EncoderOptions(precision="fp8"))
    assert np.isfinite(small[2].numpy()).all()
