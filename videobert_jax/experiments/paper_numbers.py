"""The paper's Tables 1-3 (Sun et al., ICCV 2019), transcribed for side-by-side reports.

Transcribed by hand from the ICCV 2019 paper; check them against the PDF before you
quote them. Units as printed there: accuracy in percent; BLEU, METEOR and ROUGE-L
x100; CIDEr as is. The paper's zero-shot protocol is the open vocabulary one
(``eval/zeroshot.py``'s ``open_vocabulary``).
"""

ZEROSHOT_COLUMNS = ("verb_top1", "verb_top5", "noun_top1", "noun_top5")
CAPTION_COLUMNS = ("BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


def _rows(columns, table):
  return [{"name": name, **dict(zip(columns, values))} for name, values in table]


# Table 1: zero-shot action classification on YouCook II validation.
TABLE1 = _rows(ZEROSHOT_COLUMNS, [
    ("S3D [supervised]", (16.1, 46.9, 13.2, 30.9)),
    ("BERT (language prior)", (0.0, 0.0, 0.0, 0.0)),
    ("VideoBERT (language prior)", (0.4, 6.9, 7.7, 15.3)),
    ("VideoBERT (cross modal)", (3.2, 43.3, 13.1, 33.7)),
])

# Our Table 1 rows and the paper's row each one reproduces.
TABLE1_MATCH = {
    "Supervised (linear, pooled features)": "S3D [supervised]",
    "BERT language prior (before video)": "BERT (language prior)",
    "VideoBERT language prior (no video)": "VideoBERT (language prior)",
    "VideoBERT cross-modal": "VideoBERT (cross modal)",
}

# Table 2: VideoBERT (cross modal) zero-shot accuracy by pretraining data size.
TABLE2 = [{"name": name, "num_videos": n, **dict(zip(ZEROSHOT_COLUMNS, values))}
          for name, n, values in [
              ("10K videos", 10_000, (0.4, 15.5, 2.9, 17.8)),
              ("50K videos", 50_000, (1.1, 15.7, 8.7, 27.3)),
              ("100K videos", 100_000, (2.9, 24.5, 11.2, 30.6)),
              ("300K videos", 300_000, (3.2, 43.3, 13.1, 33.7)),
          ]]

# Table 3: video captioning on YouCook II validation.
TABLE3 = _rows(CAPTION_COLUMNS, [
    ("Zhou et al. [41]", (7.53, 3.84, 11.55, 27.44, 0.38)),
    ("S3D", (6.12, 3.24, 9.52, 26.09, 0.31)),
    ("VideoBERT (video only)", (6.33, 3.81, 10.81, 27.14, 0.47)),
    ("VideoBERT", (6.80, 4.04, 11.01, 27.50, 0.49)),
    ("VideoBERT + S3D", (7.59, 4.33, 11.94, 28.80, 0.55)),
])

# Our Table 3 rows and the paper's row each one reproduces.
TABLE3_MATCH = {
    "Features only (pooled)": "S3D",
    "VideoBERT (video only)": "VideoBERT (video only)",
    "VideoBERT": "VideoBERT",
    "VideoBERT + features": "VideoBERT + S3D",
}
