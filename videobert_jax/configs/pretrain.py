"""VideoBERT pretraining configs: ``get_config("SIZE[,RECIPE]")``.

SIZE is ``tiny``, ``small``, ``base`` or ``large``; RECIPE is ``paper`` or
``actions``. Use as ``--config=pretrain:large`` (or ``pretrain:tiny,paper``) and
override any field on the command line, e.g. ``--config.train.batch_size=8``.
``large`` holds the paper's settings (BERT-large initialised from BERT-large, Adam,
lr 1e-5 with linear decay, batch 128, 500K steps); the smaller sizes exist to run
the same code on a CPU (tiny), on the MiniLM checkpoint (small) or as a mid-size
benchmark (base).

Recipes (``config.recipe``; ``docs/departures.md`` has the measured difference):

* ``paper`` (the default of small, base and large): BERT's random masking (15%,
  80/10/10) in every objective, every video-text pair trains alignment (half of
  them negatives), the video subsampling rate drawn from 1..5 for real
  (``min_video_tokens = 1``).
* ``actions`` (the default of tiny, this project's): half the video-text texts
  train alignment alone, each shown with its own and another video; of the other
  pairs a quarter mask every visual word (text-to-video) and the rest their spoken
  verb-object pairs (always ``[MASK]``); video-text examples are 3/5 of the
  mixture; subsampling keeps at least 4 visual words of a span.

Visual-word embeddings start from the codebook's leaf centroids: as they are
when the feature size equals hidden_size (S3D 1024 = large), otherwise projected by
PCA to hidden_size and rescaled to a BERT embedding row's norm
(``videobert_jax.models.visual_init``).
"""

import ml_collections

# name -> (layers, hidden, heads, mlp)
SIZES = {
    # 4 layers: deeper than the first tiny (2) at about its training rate, bought by
    # the corpus-ranked softmax; it learned alignment and every zero-shot column better
    # on both dev worlds (docs/training.md, "Depth for alignment").
    "tiny": (4, 128, 2, 512),  # trains in minutes on 2 CPU cores
    "small": (6, 384, 12, 1536),  # the all-MiniLM-L6-v2 checkpoint's shape
    "base": (12, 768, 12, 3072),  # BERT-base
    "large": (24, 1024, 16, 4096),  # BERT-large, as in the paper
}


RECIPES = ("paper", "actions")


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  """Returns the pretraining config ``SIZE[,RECIPE]`` (see the module docstring)."""
  size, _, recipe = arg.partition(",")
  if size not in SIZES:
    raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
  recipe = recipe or ("actions" if size == "tiny" else "paper")
  if recipe not in RECIPES:
    raise ValueError(f"unknown recipe {recipe!r}; choose one of {list(RECIPES)}")
  config = ml_collections.ConfigDict()
  config.size = size  # which named size this is (for logs)
  config.recipe = recipe  # "paper" or "actions": how examples are masked and paired
  config.model = _model_config(size)
  config.data = _data_config(size)
  _apply_recipe(config.data, recipe)
  config.train = _train_config(size)
  config.mesh = _mesh_config()
  config.init = _init_config()
  return config


def _apply_recipe(data: ml_collections.ConfigDict, recipe: str) -> None:
  """The masking, pairing, subsampling and mixture fields of ``recipe``."""
  paper = recipe == "paper"
  data.action_mask_rate = 0.0 if paper else 1.0
  data.alignment_rate = 1.0 if paper else 0.5
  data.min_video_tokens = 1 if paper else 4
  # actions: alignment pairs train alignment alone, each text with both videos, and
  # video-text examples are 3/5 of the mixture (docs/training.md, "Alignment that
  # learns"); paper: every pair trains both losses, one video each, equal rates.
  data.paired_negatives = not paper
  data.alignment_pairs_mlm = paper
  data.video_mask_rate = 0.0 if paper else 0.25
  data.mixture_rates.video_text = 1.0 if paper else 3.0


def _model_config(arg: str) -> ml_collections.ConfigDict:
  """The transformer's shape and numerics for size ``arg``."""
  num_layers, hidden, heads, mlp = SIZES[arg]
  tiny = arg == "tiny"
  model = ml_collections.ConfigDict()
  model.num_layers = num_layers  # transformer layers
  model.hidden_size = hidden  # H
  model.num_heads = heads  # attention heads; H must divide by it
  model.mlp_dim = mlp  # feed-forward width
  model.max_len = 512  # rows of the position table (BERT: 512)
  # Hidden dropout: BERT's 0.1, but 0 for tiny, which is underfit (its training and
  # validation alignment agree) and learned more without it on both dev worlds.
  model.dropout_rate = 0.0 if tiny else 0.1
  # 0.0 keeps attention on jax.nn.dot_product_attention's fused path; BERT used
  # 0.1, which takes an explicit softmax-dropout path.
  model.attention_dropout_rate = 0.0
  model.attention_implementation = None  # None (auto) | "xla" | "cudnn"
  model.dtype = "float32" if tiny else "bfloat16"  # compute dtype of matmuls
  model.param_dtype = "float32"  # parameters and optimizer state
  model.remat = arg == "large"  # recompute each layer in backprop (saves memory)
  # Freeze word, position and token-type embeddings, as the paper (the word table
  # is tied to the masked-token output projection, which is then frozen too; the
  # head's own output bias and the embedding LayerNorm still train). tiny trains
  # from scratch, where frozen random tables would cap what it can learn.
  model.freeze_embeddings = not tiny
  model.text_vocab_size = 30522  # BERT uncased WordPieces
  # Which ids the masked-token softmax ranks: "full" (every row) or "corpus" (the
  # WordPieces of the run's datasets, specials, [>] and visual words; tasks/
  # mlm_vocabulary.py). tiny trains from scratch, so no other id is ever a target:
  # "corpus" makes its step 4x cheaper, which pays for its 4 layers. Sizes that
  # start from a text checkpoint keep "full" (the other words carry what BERT knew).
  model.mlm_vocab = "corpus" if tiny else "full"
  model.mlm_vocab_ids = ml_collections.config_dict.placeholder(list)  # None: the trainer fills it
  model.num_visual_words = ml_collections.config_dict.placeholder(int)  # None: codebook
  return model


def _data_config(arg: str) -> ml_collections.ConfigDict:
  """Where the corpus lives and how examples are built and masked."""
  tiny = arg == "tiny"
  data = ml_collections.ConfigDict()
  data.corpus_dir = ml_collections.config_dict.placeholder(str)  # corpus folder
  data.codebook = ml_collections.config_dict.placeholder(str)  # fitted codebook path
  data.tfds_data_dir = ml_collections.config_dict.placeholder(str)  # TFDS build dir
  data.vocab_path = ml_collections.config_dict.placeholder(str)  # None: bundled vocab
  data.eval_video_ids = ml_collections.config_dict.placeholder(str)  # None: YouCook II
  # Videos held out for validation, in percent; the bundled world's 200 videos need
  # more than 1% for a validation alignment accuracy over hundreds of pairs.
  data.validation_percent = 10.0 if tiny else 1.0
  data.max_seq_len = 64 if tiny else 128  # T: tokens per example
  data.max_text_tokens = 24 if tiny else 48  # WordPieces kept per sentence pair
  data.max_video_tokens = 24 if tiny else 48  # visual words kept per clip span
  data.max_predictions = 10 if tiny else 20  # P: masked positions per example
  # Several examples per row (tasks/packing.py), attention and positions kept per
  # example: the bundled world's rows go from 19% to over 90% real tokens.
  data.pack = True  # pack examples into rows (training and validation batches)
  data.max_segments = 16 if tiny else 32  # S: examples per packed row at most
  # Masking takes ~15% of a row's tokens, so T / 5 rarely binds; each slot costs
  # head compute (tiny's step is mostly its [H, V] projection).
  data.packed_max_predictions = 12 if tiny else 24  # P of a packed row, all its examples
  data.mask_rate = 0.15  # BERT's masking rate
  data.video_text_mask_rate = ml_collections.config_dict.placeholder(float)  # None: mask_rate
  # The three recipe fields below are set by _apply_recipe (paper / actions).
  # Share of video-text examples (with verb-object pairs) masking just those pairs.
  data.action_mask_rate = 1.0  # video-text examples masking their verb-object pairs
  # Share of the aligned video-text examples outside alignment masking all their
  # visual words (before action masking, which takes the rest).
  data.video_mask_rate = 0.0  # text-to-video masking (every visual word [MASK])
  data.concat_rate = 0.5  # chance of appending the next sentence (and its clips)
  data.max_subsample = 5  # keep every r-th visual word, r drawn from 1..this
  data.min_video_tokens = 4  # subsampling leaves at least this many visual words
  # Share of video-text pairs training alignment (never action-masked); the rest
  # carry the action masking.
  data.alignment_rate = 0.5  # share of video-text pairs training alignment
  data.negative_rate = 0.5  # share of alignment pairs given another video
  data.mlm_on_negatives = False  # masked-token loss on negative pairs too
  # Each alignment text shown with its own video and with another's, in one stream.
  data.paired_negatives = False  # alignment pairs both ways (aligned + negative)
  data.alignment_pairs_mlm = True  # masked-token loss on aligned alignment pairs too
  data.mask_alignment_pairs = True  # BERT masking on alignment pairs (False: left whole, a lever)
  data.mixture_rates = ml_collections.ConfigDict(
      {"text": 1.0, "video": 1.0, "video_text": 1.0})  # sampling rate per objective
  data.seed = 0  # shuffling and masking
  data.shuffle_buffer_size = 1_000  # examples shuffled after preprocessing (fills before step 1)
  return data


def _train_config(arg: str) -> ml_collections.ConfigDict:
  """Optimizer, schedule, logging and checkpointing for size ``arg``."""
  tiny = arg == "tiny"
  train = ml_collections.ConfigDict()
  train.batch_size = {"tiny": 32, "small": 64, "base": 128, "large": 128}[arg]  # global
  train.learning_rate = 1e-3 if tiny else (1e-4 if arg in ("small", "base") else 1e-5)
  train.num_steps = {"tiny": 2000, "small": 50_000, "base": 200_000, "large": 500_000}[arg]
  train.warmup_steps = 30 if tiny else 0  # linear warm-up (the paper: none)
  train.grad_clip_norm = 1.0  # global-norm clipping, as BERT's optimizer; 0 = off
  train.adam_b1 = 0.9  # Adam beta1
  train.adam_b2 = 0.999  # Adam beta2
  train.adam_eps = 1e-6  # Adam epsilon, as BERT
  train.objective_weights = ml_collections.ConfigDict(
      {"text": 1.0, "video": 1.0, "video_text": 1.0, "alignment": 1.0})  # loss weights
  train.log_every = 10 if tiny else 100  # steps between metric writes
  train.checkpoint_every = 500 if tiny else 5000  # steps between checkpoints
  train.keep_checkpoints = 3  # newest checkpoints kept
  train.eval_every = 500 if tiny else 5000  # steps between evaluations; 0 = off
  train.eval_steps = 0 if tiny else 50  # validation batches per evaluation; 0 = all
  train.seed = 0  # parameter init and dropout
  train.data_resume = "skip"  # on resume: "skip" consumed batches or "reseed"
  train.peak_tflops = ml_collections.config_dict.placeholder(float)  # None: measure
  train.allow_config_change = False  # resume a workdir trained with other model/data fields
  return train


def _mesh_config() -> ml_collections.ConfigDict:
  """How devices split into data- and tensor-parallel axes (same for every size)."""
  mesh = ml_collections.ConfigDict()
  mesh.data = -1  # data-parallel size; -1 = all devices left after model
  mesh.model = 1  # tensor-parallel size (vocab, mlp, heads)
  return mesh


def _init_config() -> ml_collections.ConfigDict:
  """Which pretrained checkpoint, if any, initializes the text side."""
  init = ml_collections.ConfigDict()
  init.checkpoint = ml_collections.config_dict.placeholder(str)  # TF ckpt / .safetensors
  init.format = "auto"  # "auto" | "tf" | "safetensors"
  # Frozen embeddings (small, base, large) need a checkpoint: training refuses to
  # start without one unless this says random frozen word tables are meant.
  init.from_scratch = False
  return init
