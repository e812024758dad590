"""The CLIP tokenizer against Hugging Face's CLIPTokenizer on the same vocabulary files."""

from __future__ import annotations

import html

import ftfy
import pytest
import torch

from vidla.models.tokenizer import CLIPTokenizer, clip_clean

from clip_reference import write_tokenizer_files

TEXTS = [
    "a photo of a cat",
    "A man, riding a horse -- on the beach!!!",
    "It's what they'll do, isn't it? We've seen 'em.",
    "Ünïcödé café crème, naïve façade; Straße ÀÉÎÕÜ",
    "日本語のテキストと中文 and Ελληνικά, русский текст",
    "emoji 😀👍🏽 and symbols #@$%^*() [brackets] {braces} <tags/>",
    "tabs\tand\nnewlines   and    spaces",
    "numbers 1234567890 3.14 -42 1e10",
    "",
    "   ",
    " ".join(f"word{i}" for i in range(150)),
    "x" * 500,
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    return folder, write_tokenizer_files(folder)


def hf_ids(hf, texts, length=77):
    return hf(texts, padding="max_length", truncation=True, max_length=length, return_tensors="pt")["input_ids"]


def test_hf_cleanup_equals_hf_tokenizer(files):
    folder, hf = files
    ours = CLIPTokenizer.from_directory(folder, clean="hf")
    expected = hf_ids(hf, TEXTS)
    got = ours(TEXTS)
    # HF pads with its pad token (<|endoftext|>), vidla with zeros as OpenAI CLIP does: compare the real tokens
    mask = torch.arange(77)[None] <= (expected == 49407).int().argmax(-1)[:, None]
    assert torch.equal(got * mask, expected * mask)
    assert torch.all(got[~mask] == 0)


def test_clip_cleanup_equals_hf_tokenizer_on_clip_cleaned_text(files):
    folder, hf = files
    ours = CLIPTokenizer.from_directory(folder)
    texts = TEXTS + ["Tom &amp; Jerry &lt;3", "mojibake: cafÃ© and â€œquotesâ€\x9d", "ctrl\x07chars\x00here"]
    # OpenAI CLIP's clean-up, written here from its definition (clip/simple_tokenizer.py)
    cleaned = [" ".join(html.unescape(html.unescape(ftfy.fix_text(t))).strip().split()).lower() for t in texts]
    got, expected = ours(texts), hf_ids(hf, cleaned)
    mask = torch.arange(77)[None] <= (expected == 49407).int().argmax(-1)[:, None]
    assert torch.equal(got * mask, expected * mask)


def test_known_openai_ids_and_bundled_vocab(files):
    folder, _ = files
    bundled, from_files = CLIPTokenizer.default(), CLIPTokenizer.from_directory(folder)
    # "a photo of a cat" is [49406, 320, 1125, 539, 320, 2368, 49407] in OpenAI CLIP
    assert bundled(["a photo of a cat"])[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407, 0]
    assert torch.equal(bundled(TEXTS), from_files(TEXTS))
    assert bundled.vocab_size == 49408


def test_truncation_keeps_end_token_and_cleanup_rules():
    tok = CLIPTokenizer.default()
    ids = tok([" ".join(["word"] * 200), "short"])
    assert ids.shape == (2, 77)
    assert ids[0, 0] == 49406 and ids[0, -1] == 49407 and (ids[0] == 49407).sum() == 1
    assert ids[1, :3].tolist()[0] == 49406 and ids[1, 2] == 49407
    assert tok(["x"], context_length=16).shape == (1, 16)
    assert clip_clean("  Tom &amp;amp; JERRY\n\tand\u00a0friends ") == "tom & jerry and friends"
    assert tok.decode(tok(["Hello, World!"])[0].tolist()) == "hello , world !"


def test_tokenizer_json_only_folder(files, tmp_path):
    folder, hf = files
    hf.save_pretrained(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).unlink(missing_ok=True)
    assert (tmp_path / "tokenizer.json").is_file()
    assert torch.equal(CLIPTokenizer.from_directory(tmp_path)(TEXTS), CLIPTokenizer.default()(TEXTS))


def test_missing_and_broken_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer files"):
        CLIPTokenizer.from_directory(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json")
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    with pytest.raises(ValueError, match="vocab.json"):
        CLIPTokenizer.from_directory(tmp_path)


def _long_texts():
    import random

    rng = random.Random(0)
    words = ["the", "Café", "naïve", "dog", "runs", "&amp;", "日本語", "x1", "emoji😀", "cafÃ©", "â€œquotesâ€\x9d",
             "It's", "3.14", "<b>", "\xa0", "ﬁne"]
    return [" ".join(rng.choice(words) for _ in range(2500)),                 # mixed, with entities and mojibake
            "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(250)),  # many lines
            "x" * 20_000, "ab" * 10_000, "a1" * 10_000,                          # one enormous "word"
            "word " * 4000, "Ünïcödé " * 2500 + "tail"]


def test_long_texts_are_cut_before_the_work_with_the_same_ids():
    tokenizer = CLIPTokenizer.default()
    texts = _long_texts()
    got = tokenizer(texts)
    for row, text in zip(got, texts):
        full = tokenizer.encode([text])[0]  # the uncut tokenization
        expected = [tokenizer.sot_token_id] + full[:75] + [tokenizer.eot_token_id]
        assert row.tolist() == expected
        assert len(tokenizer._head(text, 75)) < len(text) // 4  # and the text really was cut
    assert torch.equal(tokenizer(texts, context_length=20)[:, :20],
                       torch.tensor([[tokenizer.sot_token_id] + tokenizer.encode([t])[0][:18] + [tokenizer.eot_token_id]
                                     for t in texts]))


def test_encode_takes_a_string_as_one_text():
    tokenizer = CLIPTokenizer.default()
    assert tokenizer.encode("a string") == tokenizer.encode(["a string"]) and len(tokenizer.encode("a string")) == 1
    with pytest.raises(TypeError, match="item 1 is int"):
        tokenizer.encode(["a", 5])
