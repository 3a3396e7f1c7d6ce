"""The EMD format's optional integrity field (``EmdFormat.crc_bits``): the CRC itself against
independent references, the golden codec (round trip, damage, first fault in stream order), the
worked example of docs/formats.md, the hashes of the configurations without it, and the
hardware decoder's verdict and its timing in Amaranth's simulator (the encoder's bits and the
decoder fuzz with a CRC run in ``tests/test_emd_amaranth.py``)."""

import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from golden import emd
from golden.codes import EmdDecoderError as C
from hdl.emd import EmdDecoder, EmdDecoderConfig, EmdEncoderConfig, crc_network
from tb.amsim import PayloadCodec, StreamBench, StreamSink, StreamSource
from tb.stimulus.emd import mixed_values

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats.md"


def _crc16_unreflected(data: bytes) -> int:
    """CRC-16/IBM-SDLC the long way: the unreflected polynomial 0x1021 in a left-shifting
    register fed every byte least significant bit first; the register read backwards."""
    state = 0xFFFF
    for byte in data:
        for i in range(8):
            top = ((state >> 15) ^ (byte >> i)) & 1
            state = ((state << 1) & 0xFFFF) ^ (0x1021 if top else 0)
    return int(f"{state:016b}"[::-1], 2) ^ 0xFFFF


def _le_bytes(values) -> bytes:
    return np.asarray(values, dtype=np.uint16).astype("<u2").tobytes()


def test_crc_definitions_match_the_catalogue():
    """Check values of the catalogue (CRC of ASCII 123456789) and two independent references."""
    assert _crc16_unreflected(b"123456789") == 0x906E
    assert emd._crc_bytes(b"123456789", emd.CRC_SPECS[16]) == 0x906E
    assert emd._crc_bytes(b"123456789", emd.CRC_SPECS[32]) == 0xCBF43926 == zlib.crc32(b"123456789")
    rng = np.random.default_rng(4)
    for n in (0, 1, 7, 1000):
        v = rng.integers(0, 1 << 16, n).astype(np.uint16)
        assert emd.crc(v, 16) == _crc16_unreflected(_le_bytes(v))
        assert emd.crc(v, 32) == zlib.crc32(_le_bytes(v))


@pytest.mark.parametrize("width", [16, 32])
@pytest.mark.parametrize("beat_bits", [16, 64, 256])
def test_hardware_crc_network_is_the_crc(width, beat_bits):
    """The XOR network the RTL builds per beat, applied beat after beat, gives the CRC."""
    spec = emd.CRC_SPECS[width]
    network = crc_network(spec, beat_bits)
    rng = np.random.default_rng(width + beat_bits)
    values = rng.integers(0, 1 << 16, 8 * beat_bits // 16).astype(np.uint16)
    state = spec.init
    for beat in values.reshape(-1, beat_bits // 16):
        word = sum(int(x) << (16 * k) for k, x in enumerate(beat))
        inputs = state | (word << width)
        state = sum((bin(inputs & mask).count("1") & 1) << j for j, mask in enumerate(network))
    assert state ^ spec.xorout == (zlib.crc32(_le_bytes(values)) if width == 32 else _crc16_unreflected(_le_bytes(values)))


CRC_FORMATS = [emd.EmdFormat(crc_bits=16), emd.EmdFormat(group=8, delta_bits=3, hi=3, escape_bits=0, sparse=False,
                                                          crc_bits=32)]


@pytest.mark.parametrize("fmt", CRC_FORMATS, ids=lambda f: f.label())
def test_round_trip_with_crc(fmt):
    """Every pattern, short and empty streams: decoded exactly, ``crc_bits`` longer than without."""
    rng = np.random.default_rng(2)
    plain = fmt.replace(crc_bits=0)
    for values in (rng.permutation(np.arange(1 << 16, dtype=np.uint16)), mixed_values(rng, 1001),
                   np.zeros(fmt.group + 3, np.uint16), np.zeros(0, np.uint16)):
        bits = emd.encode_bits(values, fmt)
        assert bits.size == emd.encoded_bits(values, plain) + fmt.crc_bits
        assert np.array_equal(bits[:-fmt.crc_bits], emd.encode_bits(values, plain)), "the CRC only appends"
        tail = bits[-fmt.crc_bits:].astype(np.int64)
        assert int((tail << np.arange(fmt.crc_bits)).sum()) == emd.crc(values, fmt.crc_bits)
        assert np.array_equal(emd.decode(emd.encode(values, fmt, 64), fmt, 64), values)


def _silently_wrong(words, fmt, values, word_bits) -> bool | None:
    """True: decodes to other values; False: decodes exactly; None: rejected."""
    try:
        return not np.array_equal(emd.decode(words, fmt, word_bits), values)
    except emd.EmdFormatError:
        return None


def test_every_single_bit_flip_is_caught_with_a_crc():
    """Flip each bit of a stream in turn: without a CRC many flips decode to other values that
    are valid in the format; with CRC-32 none does (each is rejected, most as ``CRC``)."""
    rng = np.random.default_rng(9)
    values = mixed_values(rng, 64)
    plain, checked = emd.DEFAULT, emd.DEFAULT.replace(crc_bits=32)
    silent = {False: 0, True: 0}
    crc_caught = 0
    for fmt in (plain, checked):
        words = emd.encode(values, fmt, 64)
        n_bits = emd.encoded_bits(values, fmt)
        for k in range(n_bits):
            damaged = list(words)
            damaged[k // 64] ^= 1 << (k % 64)
            verdict = _silently_wrong(damaged, fmt, values, 64)
            assert verdict is not False, f"bit {k}: a flip decoded to the same values"
            silent[fmt is checked] += bool(verdict)
            if fmt is checked and verdict is None:
                try:
                    emd.decode(damaged, fmt, 64)
                except emd.EmdFormatError as exc:
                    crc_caught += exc.code == C.CRC
    assert silent[False] > 40, f"only {silent[False]} silent flips without a CRC: the test lost its point"
    assert silent[True] == 0
    assert crc_caught >= silent[False]


def _error(words_or_bits, fmt, *, word_bits=None, lanes=1) -> C:
    with pytest.raises(emd.EmdFormatError) as info:
        if word_bits is None:
            emd.decode_bits(np.asarray(words_or_bits, np.uint8), fmt)
        else:
            emd.decode(words_or_bits, fmt, word_bits, lanes=lanes)
    return info.value.code


def test_faults_around_the_crc_in_stream_order():
    fmt = emd.DEFAULT.replace(crc_bits=16)
    rng = np.random.default_rng(5)
    values = mixed_values(rng, 100)
    bits = emd.encode_bits(values, fmt)
    assert _error(bits[:-5], fmt) == C.TRUNCATED                       # cut inside the field
    bad_crc = bits.copy()
    bad_crc[-3] ^= 1
    assert _error(bad_crc, fmt) == C.CRC
    words = emd.encode(values, fmt, 64)
    bad_words = emd.bits_to_words(bad_crc, 64)
    assert _error(bad_words + [0], fmt, word_bits=64) == C.CRC         # before the extra word
    assert _error(words + [0], fmt, word_bits=64) == C.TRAILING_DATA  # the field matches
    assert _error(words[:-1] + [words[-1] | 1 << 63], fmt, word_bits=64) == C.PADDING
    # A bad code (base 255, top delta) comes before any CRC.
    top = [(fmt.window - 1 >> i) & 1 for i in range(fmt.delta_bits)]
    assert _error([0] + [1] * 8 + (top + [0] * 8) * fmt.group, fmt) == C.BAD_CODE
    ragged = emd.encode(mixed_values(rng, fmt.group + 6), fmt, 64)
    assert _error(ragged, fmt, word_bits=64, lanes=4) == C.RAGGED


def test_formats_without_crc_keep_their_hashes():
    """``crc_bits`` = 0 stays out of the canonical JSON, so the configurations from before the
    field keep their hashes (these are the hashes recorded before it existed). ``pipeline`` = 0
    does the same (`paper` now sets 1: its hash before the field is that of ``pipeline=0``)."""
    before = {
        EmdEncoderConfig: {"tiny": "8a605becbc", "default": "0b60d38af5", "paper": "c6be84ecdf", "simple": "30620de910"},
        EmdDecoderConfig: {"tiny": "9c1e7c9121", "default": "79313231fe", "paper": "18dbd7be9b", "simple": "c95dfdf2b7"},
    }
    for cls, hashes in before.items():
        for preset, digest in hashes.items():
            cfg = cls.preset(preset, pipeline=0)
            assert cfg.config_hash() == digest, f"{cls.__name__} {preset}"
            assert "pipeline" not in cfg.to_json() and cls.preset(preset, pipeline=1).config_hash() != digest
            assert "crc_bits" not in cfg.to_json() and cfg.to_dict()["fmt"]["crc_bits"] == 0
            with_crc = cls.preset(preset, fmt={"crc_bits": 16}, pipeline=0)
            assert '"crc_bits":16' in with_crc.to_json() and with_crc.config_hash() != digest
            assert cls.from_json(with_crc.to_json()) == with_crc and cls.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="crc_bits=8 is not allowed; crc_bits must be one of 0, 16, 32"):
        emd.EmdFormat(crc_bits=8)


def _doc_example() -> dict[str, str]:
    text = DOC.read_text()
    section = text[text.index("### Integrity field (optional CRC)"):]
    block = re.search(r"```\n(format:.*?)```", section, re.S)
    assert block, "docs/formats.md: the CRC example block is missing"
    return dict(line.split(":", 1) for line in block.group(1).strip().splitlines())


def test_documented_crc_example():
    """The worked example of docs/formats.md, "Integrity field", line by line."""
    ex = {k.strip(): v.strip() for k, v in _doc_example().items()}
    params = dict(item.split("=") for item in ex["format"].split())
    fmt = emd.EmdFormat(group=int(params["G"]), delta_bits=int(params["D"]), hi=int(params["hi"]),
                        escape_bits=int(params["E"]), crc_bits=int(params["crc_bits"]))
    values = np.array([int(x, 16) for x in ex["values"].split()], np.uint16)
    assert _le_bytes(values).hex(" ").upper() == ex["message"]
    assert emd.crc(values, fmt.crc_bits) == int(ex["crc"], 16)
    n_bits = int(ex["bits"].split()[0])
    assert emd.encoded_bits(values, fmt) == n_bits == emd.encoded_bits(values, fmt.replace(crc_bits=0)) + 16
    assert emd.encode(values, fmt, 32) == [int(w, 16) for w in ex["words32"].split()]


def test_decoder_flags_a_crc_mismatch_in_time_and_recovers():
    """A flipped mantissa bit decodes to valid values; the decoder puts them out, then raises
    ``error`` with ``CRC`` by the cycle after the last beat's transfer, and the next stream
    decodes with the flag cleared."""
    cfg = EmdDecoderConfig.preset("tiny", fmt={"crc_bits": 16})
    rng = np.random.default_rng(8)
    values = mixed_values(rng, 3 * cfg.fmt.group)
    bits = emd.encode_bits(values, cfg.fmt)
    # Fields: group header (mode, mu, zero mode), then per value flag, zero sign, code, short
    # escape, raw exponent, sign/mantissa: flip bit 3 of the first value's sign/mantissa field.
    _, widths = emd.encode_fields(values, cfg.fmt)
    assert widths[8] == 8, "the first value should carry its sign/mantissa"
    bits[int(widths[:8].sum()) + 3] ^= 1
    bad = emd.bits_to_words(bits, cfg.word_bits)
    with pytest.raises(emd.EmdFormatError) as info:
        emd.decode(bad, cfg.fmt, cfg.word_bits, lanes=cfg.lanes)
    assert info.value.code == C.CRC
    good = emd.encode(values, cfg.fmt, cfg.word_bits)
    dut = EmdDecoder(cfg)
    bench = StreamBench(dut, seed=3, max_cycles=2000)
    source = StreamSource(bench, "i")
    codec = PayloadCodec(dut.o.payload.shape(), nested=True)
    sink = StreamSink(bench, "o", codec)
    error, err_code = bench.watch(dut.error), bench.watch(dut.err_code)
    valid, ready = bench.watch(dut.o.valid), bench.watch(dut.o.ready)
    beats = len(values) // cfg.lanes
    for words in (bad, good):
        source.send_all({"data": w, "last": int(k == len(words) - 1)} for k, w in enumerate(words))
    bench.run(until=lambda: len(sink.received) == 2 * beats, settle=4)
    transfers = [k for k, (v, r) in enumerate(zip(valid, ready)) if v and r]
    last = transfers[beats - 1]         # the bad stream's last beat
    assert error[last + 1] == 1 and err_code[last + 1] == C.CRC, \
        f"error {error[last - 2:last + 4]} err_code {err_code[last - 2:last + 4]} around the last beat (cycle {last})"
    assert error[last] == 0, "error rose before the values were out"
    got = [np.array([x for beat in part for x in beat["data"]], np.uint16)
           for part in (sink.received[:beats], sink.received[beats:])]
    assert sink.received[beats - 1]["last"] == 1 and not np.array_equal(got[0], values)
    assert np.array_equal(got[1], values) and error[-1] == 0 and err_code[-1] == C.NONE
