"""Tests of videobert_jax.tasks.preprocessors on small in-memory datasets (seqio helpers)."""

import numpy as np
import pytest
import seqio
from seqio import test_utils
import tensorflow as tf

from videobert_jax import batch as batch_lib
from videobert_jax.tasks import negatives as negatives_lib
from videobert_jax.tasks import preprocessors as pp
from videobert_jax.tasks import registry as tasks
from videobert_jax import tokens

LAYOUT = tokens.TokenLayout(text_vocab_size=415, num_visual_words=9)
FIRST_WORD = 104


def make_spec(**overrides):
  kwargs = dict(layout=LAYOUT, max_seq_len=32, max_text_tokens=10, max_video_tokens=10,
                max_predictions=8, first_word_id=FIRST_WORD)
  kwargs.update(overrides)
  return pp.SequenceSpec(**kwargs)


def dataset(examples):
  """A tf.data dataset of dicts (ragged int lists become int32 vectors)."""
  sig = {k: (tf.TensorSpec([], tf.string) if isinstance(v, str)
             else tf.TensorSpec([None], tf.int32)) for k, v in examples[0].items()}
  return tf.data.Dataset.from_generator(
      lambda: ({k: (v if isinstance(v, str) else np.asarray(v, np.int32))
                for k, v in ex.items()} for ex in examples), output_signature=sig)


def pair(video_id, text, video, next_text=(), next_video=()):
  return {"video_id": video_id, "text_ids": list(text), "next_text_ids": list(next_text),
          "visual_words": list(video), "next_visual_words": list(next_video)}


def test_select_features_maps_visual_words_to_token_ids():
  spec = make_spec()
  ds = pp.select_features(dataset([pair("a", [200, 201], [0, 8], [202], [3])]), spec=spec)
  off = LAYOUT.visual_offset
  test_utils.assert_dataset(ds, {
      "video_id": b"a", "text_ids": [200, 201], "next_text_ids": [202],
      "video_ids": [off, off + 8], "next_video_ids": [off + 3]})


def test_assemble_layouts_and_token_types():
  spec = make_spec()
  off = LAYOUT.visual_offset
  ex = {"video_id": "a", "text_ids": [200, 201], "video_ids": [off, off + 1, off + 2]}
  ds = dataset([ex])
  vt = pp.assemble(ds, spec=spec, objective=batch_lib.VIDEO_TEXT)
  test_utils.assert_dataset(vt, {
      "input_ids": [101, 200, 201, LAYOUT.video_sep_id, off, off + 1, off + 2, 102],
      "token_type_ids": [0, 0, 0, 1, 1, 1, 1, 1], "objective": batch_lib.VIDEO_TEXT,
      "alignment_label": 1, "alignment_weight": 1.0, "mlm_weight": 1.0, "video_id": b"a"})
  text = pp.assemble(dataset([{"video_id": "a", "text_ids": [200, 201]}]), spec=spec,
                     objective=batch_lib.TEXT)
  test_utils.assert_dataset(text, {
      "input_ids": [101, 200, 201, 102], "token_type_ids": [0, 0, 0, 0],
      "objective": batch_lib.TEXT, "alignment_label": 1, "alignment_weight": 0.0,
      "mlm_weight": 1.0, "video_id": b"a"})
  video = pp.assemble(dataset([{"video_id": "a", "video_ids": [off, off + 1]}]),
                      spec=spec, objective=batch_lib.VIDEO)
  test_utils.assert_dataset(video, {
      "input_ids": [101, LAYOUT.video_sep_id, off, off + 1, 102],
      "token_type_ids": [0, 1, 1, 1, 1], "objective": batch_lib.VIDEO,
      "alignment_label": 1, "alignment_weight": 0.0, "mlm_weight": 1.0, "video_id": b"a"})


@pytest.mark.parametrize("mlm_on_negatives,expected", [(False, 0.0), (True, 1.0)])
def test_negative_pairs_masked_loss_weight(mlm_on_negatives, expected):
  spec = make_spec(mlm_on_negatives=mlm_on_negatives)
  off = LAYOUT.visual_offset
  ex = {"video_id": "a", "text_ids": [200, 201], "video_ids": [off]}
  negative = dataset([ex]).map(lambda e: {**e, "alignment_label": tf.constant(0)})
  out = next(pp.assemble(negative, spec=spec,
                         objective=batch_lib.VIDEO_TEXT).as_numpy_iterator())
  assert out["alignment_label"] == 0 and out["mlm_weight"] == expected


def test_assemble_truncates_to_configured_lengths():
  spec = make_spec(max_seq_len=16, max_text_tokens=5, max_video_tokens=20)
  off = LAYOUT.visual_offset
  ex = {"video_id": "a", "text_ids": list(range(200, 230)),
        "video_ids": [off + i % 9 for i in range(40)]}
  out = next(iter(pp.assemble(dataset([ex]), spec=spec,
                              objective=batch_lib.VIDEO_TEXT).as_numpy_iterator()))
  assert len(out["input_ids"]) == 16
  assert list(out["input_ids"][1:6]) == list(range(200, 205))  # 5 text tokens
  assert out["input_ids"][6] == LAYOUT.video_sep_id and out["input_ids"][-1] == 102
  text_only = next(iter(pp.assemble(dataset([{"video_id": "a", "text_ids": ex["text_ids"]}]),
                                    spec=spec, objective=batch_lib.TEXT)
                        .as_numpy_iterator()))
  assert len(text_only["input_ids"]) == 16


def _masked(spec, examples, seed=3, alignment=False):
  ds = dataset(examples)
  with seqio.utils.map_seed_manager(seed):
    ds = pp.select_features(ds, spec=spec)
    ds = pp.assemble(ds, spec=spec, objective=batch_lib.VIDEO_TEXT)
    if not alignment:  # pairs for the masked-token objectives only
      ds = ds.map(lambda ex: {**ex, "alignment_weight": tf.constant(0.0)})
    ds = pp.mask_tokens(ds, spec=spec)
  return list(ds.as_numpy_iterator())


def test_action_masking_hides_every_verb_object_pair_and_nothing_else():
  spec = make_spec(max_seq_len=32, max_text_tokens=12, max_video_tokens=8,
                   max_predictions=6, action_mask_rate=0.5)
  # "now chop the onion then boil the rice": pairs (chop, onion) and (boil, rice)
  text = [201, 300, 200, 301, 202, 302, 200, 303]
  groups = [0, 1, 0, 1, 0, 2, 0, 2]
  examples = [{**pair(f"v{i}", text, [1, 2, 3]), "action_groups": groups,
               "next_action_groups": []} for i in range(300)]
  out = _masked(spec, examples)
  pairs = 0
  for ex in out:
    assert "action_groups" not in ex  # consumed by masking, never a model input
    if list(ex["masked_positions"]) == [2, 4, 6, 8]:
      pairs += 1
      assert list(ex["masked_ids"]) == [300, 301, 302, 303]
      # always [MASK]: never left visible or swapped for another word
      assert all(ex["input_ids"][p] == spec.layout.mask_id for p in (2, 4, 6, 8))
  # Random 15% masking of 11 candidates picks 2 positions, never 4.
  assert pairs / len(out) == pytest.approx(0.5, abs=0.08)
  text_spec = pp.for_objective(spec, batch_lib.TEXT)
  assert text_spec.action_mask_rate == 0.0 and text_spec.mask_rate == spec.mask_rate


def test_action_masking_falls_back_to_random_masking_without_pairs():
  spec = make_spec(max_seq_len=32, max_text_tokens=12, max_video_tokens=8,
                   max_predictions=6, action_mask_rate=1.0)
  text = [201, 300, 200, 301]
  examples = [{**pair(f"v{i}", text, [1, 2, 3]), "action_groups": [0, 0, 0, 0],
               "next_action_groups": []} for i in range(40)]
  counts = {len(ex["masked_positions"]) for ex in _masked(spec, examples)}
  assert counts == {1}  # round(0.15 * 7 candidates)


def test_concatenated_sentences_keep_distinct_action_groups():
  spec = make_spec(concat_rate=1.0)
  ex = {**pair("a", [300, 301], [1], [302, 303, 304], [2]),
        "action_groups": [1, 1], "next_action_groups": [0, 1, 1]}
  with seqio.utils.map_seed_manager(0):
    ds = pp.concat_neighbours(pp.select_features(dataset([ex]), spec=spec), spec=spec)
    out = next(ds.as_numpy_iterator())
  assert list(out["text_ids"]) == [300, 301, 302, 303, 304]
  assert list(out["action_groups"]) == [1, 1, 0, 2, 2]
  assert "next_action_groups" not in out


def test_masking_statistics_and_same_modality_replacement():
  spec = make_spec(max_seq_len=64, max_text_tokens=30, max_video_tokens=30,
                   max_predictions=20)
  rng = np.random.default_rng(0)
  examples = [pair(f"v{i}", rng.integers(FIRST_WORD, 415, 20), rng.integers(0, 9, 20))
              for i in range(400)]
  out = _masked(spec, examples)
  kept = replaced_mask = replaced_random = 0
  masked = total = 0
  for ex in out:
    ids, pos, tgt = ex["input_ids"], ex["masked_positions"], ex["masked_ids"]
    total += len(ids) - 3  # every token but [CLS], [>] and [SEP] is a candidate
    masked += len(pos)
    assert list(pos) == sorted(pos) and len(pos) <= spec.max_predictions
    # Specials are never chosen.
    assert not np.isin(tgt, [101, 102, LAYOUT.video_sep_id, 0]).any()
    for p, t in zip(pos, tgt):
      now = ids[p]
      if now == tokens.MASK_ID:
        replaced_mask += 1
      elif now == t:
        kept += 1
      else:
        replaced_random += 1
        # Random replacement stays in the target's modality.
        if LAYOUT.is_visual(t):
          assert LAYOUT.is_visual(now)
        else:
          assert FIRST_WORD <= now < LAYOUT.text_vocab_size
    unmasked = np.setdiff1d(np.arange(len(ids)), pos)
    assert tokens.MASK_ID not in ids[unmasked]
  assert masked / total == pytest.approx(0.15, abs=0.01)
  assert replaced_mask / masked == pytest.approx(0.8, abs=0.03)
  # A random replacement may draw the original id (1/311 text, 1/9 video), which
  # then counts as kept: both shares stay near 10%.
  assert replaced_random / masked == pytest.approx(0.1, abs=0.03)
  assert kept / masked == pytest.approx(0.1, abs=0.03)


def test_masking_is_deterministic_for_a_seed():
  spec = make_spec()
  examples = [pair(f"v{i}", range(200, 215), range(9)) for i in range(5)]
  a, b, c = _masked(spec, examples, 1), _masked(spec, examples, 1), _masked(spec, examples, 2)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["input_ids"], y["input_ids"])
  assert any((x["masked_positions"].shape != z["masked_positions"].shape)
             or (x["masked_positions"] != z["masked_positions"]).any()
             for x, z in zip(a, c))


def test_concat_neighbours_joins_text_and_video_together():
  spec = make_spec(concat_rate=1.0)
  ds = pp.select_features(dataset([pair("a", [200], [1], [201, 202], [2, 3]),
                                   pair("a", [203], [4])]), spec=spec)
  with seqio.utils.map_seed_manager(0):
    ds = pp.concat_neighbours(ds, spec=spec)
  off = LAYOUT.visual_offset
  test_utils.assert_dataset(ds, [
      {"video_id": b"a", "text_ids": [200, 201, 202], "video_ids": [off + 1, off + 2, off + 3]},
      # No next sentence: nothing to join.
      {"video_id": b"a", "text_ids": [203], "video_ids": [off + 4]}])


def test_subsample_video_rates_one_to_five():
  spec = make_spec()
  off = LAYOUT.visual_offset
  video = list(range(off, off + 9)) * 3
  ds = dataset([{"video_id": f"v{i}", "video_ids": video} for i in range(200)])
  with seqio.utils.map_seed_manager(0):
    out = list(pp.subsample_video(ds, spec=spec).as_numpy_iterator())
  rates = set()
  for ex in out:
    got = ex["video_ids"]
    assert len(got) >= 1
    start = video.index(got[0])
    step = (video.index(got[1], start + 1) - start) if len(got) > 1 else None
    if step:
      assert list(got) == video[start::step]
      rates.add(step)
  assert rates == {1, 2, 3, 4, 5}


def test_subsample_video_keeps_short_spans_whole_enough():
  spec = make_spec(min_video_tokens=4)
  off = LAYOUT.visual_offset
  lengths = [1, 3, 4, 7, 8, 12]
  ds = dataset([{"video_id": f"v{i}", "video_ids": list(range(off, off + n))}
                for i in range(60) for n in lengths])
  with seqio.utils.map_seed_manager(0):
    out = list(pp.subsample_video(ds, spec=spec).as_numpy_iterator())
  for ex, n in zip(out, lengths * 60):
    assert len(ex["video_ids"]) >= min(n, 4), (n, ex["video_ids"])


def test_alignment_negatives_come_from_another_video():
  spec = make_spec()
  rng = np.random.default_rng(1)
  # Few videos, many sentences each, in runs: the pool often holds the same video.
  examples = [pair(f"vid{i // 6}", [200 + i % 50], rng.integers(0, 9, 4)) for i in range(300)]
  ds = pp.select_features(dataset(examples), spec=spec)
  with seqio.utils.map_seed_manager(0):
    out = list(negatives_lib.alignment_negatives(ds, spec=spec).as_numpy_iterator())
  originals = {(e["video_id"], tuple(e["text_ids"])): np.asarray(e["visual_words"])
               + LAYOUT.visual_offset for e in examples}
  negatives = [ex for ex in out if ex["alignment_label"] == 0]
  assert len(negatives) / len(out) == pytest.approx(0.5, abs=0.08)
  for ex in out:
    vid = ex["video_id"].decode()
    if ex["alignment_label"] == 0:
      assert ex["video_source_id"] != ex["video_id"]
      # The tokens are a video of the named source, not of this video.
      sources = [v for (k, _), v in originals.items() if k == ex["video_source_id"].decode()]
      assert any(np.array_equal(ex["video_ids"], v) for v in sources)
    else:
      assert ex["video_source_id"].decode() == vid
      np.testing.assert_array_equal(ex["video_ids"],
                                    originals[(vid, tuple(ex["text_ids"]))])


def _video_text_stream(spec, examples):
  """``examples`` through the video-text chain: features, negatives, assembly, masking."""
  ds = pp.select_features(dataset(examples), spec=spec)
  with seqio.utils.map_seed_manager(0):
    ds = negatives_lib.alignment_negatives(ds, spec=spec)
    ds = pp.assemble(ds, spec=spec, objective=batch_lib.VIDEO_TEXT)
    return list(pp.mask_tokens(ds, spec=spec).as_numpy_iterator())


def test_alignment_pairs_are_balanced_and_never_action_masked():
  # Half the pairs train alignment (half of those negative); the other half are
  # aligned pairs for the masked-token objectives, where action masking applies.
  spec = make_spec(max_seq_len=32, max_text_tokens=12, max_video_tokens=8,
                   max_predictions=6, action_mask_rate=1.0, alignment_rate=0.5)
  text = [201, 300, 200, 301]
  examples = [{**pair(f"v{i % 30}", text, [1, 2, 3]), "action_groups": [0, 1, 0, 1],
               "next_action_groups": []} for i in range(600)]
  out = _video_text_stream(spec, examples)
  aligned = [ex for ex in out if ex["alignment_weight"] == 1.0]
  others = [ex for ex in out if ex["alignment_weight"] == 0.0]
  assert len(aligned) + len(others) == len(out)
  assert len(aligned) / len(out) == pytest.approx(0.5, abs=0.07)
  assert np.mean([ex["alignment_label"] for ex in aligned]) == pytest.approx(0.5, abs=0.08)
  # Positives and negatives of alignment are masked alike: at random, one position
  # of 7 candidates, so the verb and the object stay visible together most of the time.
  assert {len(ex["masked_positions"]) for ex in aligned} == {1}
  # Every other pair is aligned and has its verb-object pair masked.
  assert all(ex["alignment_label"] == 1 for ex in others)
  assert all(list(ex["masked_positions"]) == [2, 4] for ex in others)


def test_paired_negatives_show_each_alignment_text_with_both_videos():
  # data.paired_negatives: every text drawn for alignment comes out twice, with its
  # own video (label 1, masked-token loss kept) and another's (label 0, none).
  spec = make_spec(max_seq_len=32, max_text_tokens=12, max_video_tokens=8,
                   max_predictions=6, action_mask_rate=1.0, alignment_rate=0.5,
                   paired_negatives=True)
  examples = [{**pair(f"v{i % 30}", [110 + i // 300, 201, 110 + i % 300, 301], [i % 9, 2, 3]),
               "action_groups": [0, 0, 0, 1], "next_action_groups": []} for i in range(400)]
  out = _video_text_stream(spec, examples)
  alignment = [ex for ex in out if ex["alignment_weight"] == 1.0]
  by_text = {}
  for ex in alignment:
    text = ex["input_ids"].copy()
    text[ex["masked_positions"]] = ex["masked_ids"]  # the text before masking
    by_text.setdefault(tuple(text[1:5]), []).append(ex)
  # About half the texts (alignment_rate) train alignment, each exactly both ways.
  assert len(by_text) / len(examples) == pytest.approx(0.5, abs=0.07)
  for pairs in by_text.values():
    assert sorted(ex["alignment_label"] for ex in pairs) == [0, 1]
    positive, negative = sorted(pairs, key=lambda ex: -ex["alignment_label"])
    assert positive["video_source_id"] == positive["video_id"] != negative["video_source_id"]
    assert (positive["mlm_weight"], negative["mlm_weight"]) == (1.0, 0.0)
  # The other texts come once, aligned, with their verb-object pair masked.
  others = [ex for ex in out if ex["alignment_weight"] == 0.0]
  assert len(others) + len(by_text) == len(examples)
  assert all(ex["alignment_label"] == 1 and list(ex["masked_positions"]) == [4]
             for ex in others)


@pytest.mark.parametrize("alignment_pairs_mlm,expected", [(True, 1.0), (False, 0.0)])
def test_alignment_pairs_mlm_switch(alignment_pairs_mlm, expected):
  # data.alignment_pairs_mlm False: aligned pairs that train alignment carry no
  # masked-token loss; the pairs outside alignment keep theirs.
  spec = make_spec(alignment_pairs_mlm=alignment_pairs_mlm)
  off = LAYOUT.visual_offset
  ex = {"video_id": "a", "text_ids": [200, 201], "video_ids": [off]}
  ds = dataset([ex]).map(lambda e: {**e, "alignment_label": tf.constant(1),
                                    "alignment_example": tf.constant(True)})
  out = next(pp.assemble(ds, spec=spec, objective=batch_lib.VIDEO_TEXT).as_numpy_iterator())
  assert (out["alignment_weight"], out["mlm_weight"]) == (1.0, expected)
  outside = dataset([ex]).map(lambda e: {**e, "alignment_example": tf.constant(False)})
  out = next(pp.assemble(outside, spec=spec,
                         objective=batch_lib.VIDEO_TEXT).as_numpy_iterator())
  assert (out["alignment_weight"], out["mlm_weight"]) == (0.0, 1.0)


def test_alignment_pairs_left_whole_when_they_carry_no_masked_token_loss():
  # data.mask_alignment_pairs False (the actions recipe): the pairs that train
  # alignment keep every token, so the head sees the verb and noun it must match;
  # the other pairs are masked as before.
  spec = make_spec(max_seq_len=32, max_text_tokens=12, max_video_tokens=8,
                   max_predictions=6, action_mask_rate=1.0, alignment_rate=0.5,
                   paired_negatives=True, alignment_pairs_mlm=False,
                   mask_alignment_pairs=False)
  examples = [{**pair(f"v{i % 30}", [110 + i // 300, 201, 110 + i % 300, 301], [i % 9, 2, 3]),
               "action_groups": [0, 0, 0, 1], "next_action_groups": []} for i in range(200)]
  texts = {tuple(ex["text_ids"]) for ex in examples}
  out = _video_text_stream(spec, examples)
  alignment = [ex for ex in out if ex["alignment_weight"] == 1.0]
  others = [ex for ex in out if ex["alignment_weight"] == 0.0]
  assert alignment and others
  for ex in alignment:
    assert len(ex["masked_positions"]) == 0 and ex["mlm_weight"] == 0.0
    assert tokens.MASK_ID not in ex["input_ids"]
    assert tuple(ex["input_ids"][1:5]) in texts
  assert sorted({ex["alignment_label"] for ex in alignment}) == [0, 1]
  assert all(list(ex["masked_positions"]) == [4] and tokens.MASK_ID in ex["input_ids"]
             for ex in others)


def test_validation_alignment_pairs_are_scored_whole_when_trained_whole():
  # The alignment validation task follows the training spec: whole pairs there,
  # whole pairs here, so the eval measures what the head was trained on.
  spec = make_spec(alignment_pairs_mlm=False, mask_alignment_pairs=False)
  examples = [pair(f"v{i % 5}", [110 + i, 201], [i % 9, 2]) for i in range(40)]
  ds = pp.select_features(dataset(examples), spec=spec)
  with seqio.utils.map_seed_manager(0):
    ds = negatives_lib.alignment_negatives(ds, spec=spec, paired=True)
    ds = pp.assemble(ds, spec=spec, objective=batch_lib.VIDEO_TEXT)
    out = list(pp.mask_tokens(ds, spec=spec).as_numpy_iterator())
  assert len(out) >= 60
  assert all(ex["alignment_weight"] == 1.0 and len(ex["masked_positions"]) == 0
             and tokens.MASK_ID not in ex["input_ids"] for ex in out)


def test_unmasked_alignment_pairs_cannot_carry_a_masked_token_loss():
  with pytest.raises(ValueError, match="alignment_pairs_mlm=False"):
    make_spec(mask_alignment_pairs=False, alignment_pairs_mlm=True)
  with pytest.raises(ValueError, match="mlm_on_negatives=False"):
    make_spec(mask_alignment_pairs=False, alignment_pairs_mlm=False, mlm_on_negatives=True)


def test_validation_pairs_score_every_sentence_both_ways_without_masked_loss():
  # The alignment validation task (paired=True): each example with another video
  # pooled comes out aligned and negative, alignment only; exactly half negatives.
  spec = make_spec()
  examples = [pair(f"v{i % 5}", [110 + i], [i % 9, 2]) for i in range(60)]
  ds = pp.select_features(dataset(examples), spec=spec)
  with seqio.utils.map_seed_manager(0):
    ds = negatives_lib.alignment_negatives(ds, spec=spec, paired=True)
    out = list(pp.assemble(ds, spec=spec, objective=batch_lib.VIDEO_TEXT).as_numpy_iterator())
  assert len(out) == 2 * (len(examples) - 1)  # the first example has no other video yet
  assert [ex["alignment_label"] for ex in out] == [1, 0] * (len(out) // 2)
  assert all(ex["alignment_weight"] == 1.0 and ex["mlm_weight"] == 0.0 for ex in out)
  for positive, negative in zip(out[::2], out[1::2]):
    np.testing.assert_array_equal(positive["input_ids"][:2], negative["input_ids"][:2])
    assert negative["video_source_id"] != negative["video_id"]


def test_video_masking_hides_every_visual_word_outside_alignment():
  # data.video_mask_rate: aligned pairs outside alignment mask all their visual
  # words as [MASK] (text-to-video), before action masking takes the rest.
  spec = make_spec(max_seq_len=32, max_text_tokens=12, max_video_tokens=8,
                   max_predictions=6, action_mask_rate=1.0, video_mask_rate=0.5)
  off = LAYOUT.visual_offset
  examples = [{**pair("v", [201, 300, 200, 301], [1, 2, 3]),
               "action_groups": [0, 1, 0, 1], "next_action_groups": []} for _ in range(200)]
  out = _masked(spec, examples)
  video = [ex for ex in out if ex["video_masked"]]
  assert len(video) / len(out) == pytest.approx(0.5, abs=0.1)
  for ex in video:
    assert list(ex["masked_ids"]) == [off + 1, off + 2, off + 3]
    assert all(ex["input_ids"][p] == tokens.MASK_ID for p in ex["masked_positions"])
    assert not ex["actions_masked"]
  assert all(ex["actions_masked"] for ex in out if not ex["video_masked"])
  # Alignment pairs are never video-masked.
  assert not any(ex["video_masked"] for ex in _masked(spec, examples, alignment=True))


def test_single_video_corpus_has_no_negatives():
  spec = make_spec()
  ds = pp.select_features(dataset([pair("only", [200 + i], [i % 9]) for i in range(20)]),
                          spec=spec)
  with seqio.utils.map_seed_manager(0):
    out = list(negatives_lib.alignment_negatives(ds, spec=spec).as_numpy_iterator())
  assert all(ex["alignment_label"] == 1 for ex in out)


def test_feature_converter_pads_to_model_batch():
  spec = make_spec(max_seq_len=12, max_predictions=4)
  ds = tf.data.Dataset.from_tensors({
      "input_ids": tf.constant([101, 103, 201, 102]),
      "token_type_ids": tf.constant([0, 0, 0, 0]),
      "masked_positions": tf.constant([1]), "masked_ids": tf.constant([200]),
      "alignment_label": tf.constant(1), "alignment_weight": tf.constant(0.0),
      "objective": tf.constant(batch_lib.TEXT), "mlm_weight": tf.constant(0.5)})
  out = pp.VideoBertFeatureConverter()(ds, pp.task_feature_lengths(spec))
  test_utils.assert_dataset(out, {
      "input_ids": [101, 103, 201, 102] + [0] * 8,
      "token_type_ids": [0] * 12,
      "attention_mask": [1] * 4 + [0] * 8,
      "masked_positions": [1, 0, 0, 0], "masked_ids": [200, 0, 0, 0],
      "masked_weights": [0.5, 0.0, 0.0, 0.0],
      "alignment_label": 1, "alignment_weight": 0.0, "objective": batch_lib.TEXT})


def test_first_ordinary_word_id_skips_unused_entries():
  assert tasks.first_ordinary_word_id() == 999  # bert-base-uncased: [unused99..993]
  assert tasks.first_ordinary_word_id("tests/fixtures/tiny_vocab.txt") == 104
