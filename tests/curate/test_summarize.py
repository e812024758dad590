import pytest
from _curate_synth import FakeGenerator

from vidla.curate.summarize import (SUMMARY_PROMPT, TextRule, clean_reply, clip_texts, clip_token_count, fit_text,
                                    join_captions, summarize, summary_prompt)


def test_the_paper_prompt_verbatim():
    assert SUMMARY_PROMPT == ("Summarize the following sentences into a single sentence, not exceeding 25 words. "
                              "Do not output any additional text and use any external information.")
    assert summary_prompt("A dog runs. It jumps.") == (
        "Summarize the following sentences into a single sentence, not exceeding 25 words. Do not output any "
        "additional text and use any external information. A dog runs. It jumps.")


@pytest.mark.parametrize("reply,expected", [
    ("A dog runs.", "A dog runs."), ("  \nSummary: A dog runs.\nExtra line", "A dog runs."),
    ('"A dog runs."', "A dog runs."), ("“A dog runs.”", "A dog runs."), ("", "")])
def test_clean_reply(reply, expected):
    assert clean_reply(reply) == expected


def test_join_captions_drops_repeats():
    assert join_captions(["a dog", "a dog.", "a cat on a mat", " ", "a dog"]) == "a dog. a cat on a mat. a dog."


def test_clip_token_count_uses_clip_bpe():
    assert clip_token_count("a dog") == 2
    assert clip_token_count("A DOG!") == 3


def test_fit_text_keeps_whole_sentences_then_words():
    def count(text):
        return len(text.split())

    assert fit_text("One two. Three four five.", 5, count) == "One two. Three four five."
    assert fit_text("One two. Three four five. Six.", 4, count) == "One two."
    assert fit_text("One two three four five six.", 4, count) == "One two three four"
    real = fit_text("a " * 100, 75)
    assert clip_token_count(real) == 75


def _raw():
    long_subtitle = " ".join(f"Sentence number {i} is here." for i in range(30))  # ~150 tokens
    return [("short", {"caption": "a dog.", "subtitle": "It runs."}),
            ("short", {"caption": "a cat.", "subtitle": long_subtitle}),
            ("medium", {"caption": "a dog. a dog on grass.", "subtitle": "It runs. It stops. It barks again."}),
            ("long", {"caption": "a cat.", "subtitle": ""})]


def test_rules_summarise_medium_and_long_and_overlong_short():
    generator = FakeGenerator()
    texts = clip_texts(_raw(), TextRule(), generator.generate)
    assert texts[0] == {"caption": "a dog.", "subtitle": "It runs."}  # short clips keep their texts
    assert texts[1]["caption"] == "a cat."
    assert texts[1]["subtitle"] == "Sentence number 0 is here. Sentence number 1."  # too long: summarised
    assert texts[2] == {"caption": "a dog. a dog on grass.", "subtitle": "It runs. It stops. It barks again."}
    assert texts[3] == {"caption": "a cat.", "subtitle": ""}  # an empty text is not sent
    assert all(p.startswith(SUMMARY_PROMPT + " ") for p in generator.prompts)
    assert len(generator.prompts) == 4  # short: 1 over-long subtitle; medium: 2; long: its caption


def test_rules_without_a_generator_fit_by_truncation():
    texts = clip_texts(_raw(), TextRule(), None)
    assert texts[2]["subtitle"] == "It runs. It stops. It barks again."
    assert clip_token_count(texts[1]["subtitle"]) <= 75 and texts[1]["subtitle"].endswith("is here.")


def test_overlong_input_is_summarised_in_parts():
    generator = FakeGenerator()
    text = " ".join(f"Part {i} has five words." for i in range(10))  # 50 words
    [summary] = summarize([text], generator.generate, max_input_words=30)
    assert len(generator.prompts) == 3  # 2 parts of whole sentences, at most 30 words; then both summaries
    assert generator.prompts[0] == summary_prompt(" ".join(f"Part {i} has five words." for i in range(6)))
    assert generator.prompts[2] == summary_prompt("Part 0 has five words. Part 1 has. Part 6 has five words. "
                                                  "Part 7 has.")
    assert summary == generator.generate([generator.prompts[-1]])[0]
