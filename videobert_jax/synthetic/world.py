"""The generative pieces of the synthetic cooking world (see ``synthesize``).

This module holds the world's vocabulary (cooking verbs and nouns with their
German and Spanish words), the latent structure (a verb-noun joint distribution
and recipes), and the three samplers that turn latents into observations:
``plan_video`` (the timeline of steps), ``render_features`` (clip features) and
``narrate`` (timed speech). ``synthesize`` documents the model as a whole and
writes files; nothing here touches the disk.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Noun categories, used only to make some verb-noun pairs implausible.
LIQUID, PRODUCE, PROTEIN, STARCH, DAIRY, DRY = ("liquid", "produce", "protein",
                                                "starch", "dairy", "dry")
ALL = (LIQUID, PRODUCE, PROTEIN, STARCH, DAIRY, DRY)

# (verb, gerund, German, Spanish, categories of the nouns it takes). Ordered so
# that any prefix mixes general verbs (add, mix) with specific ones (pour, peel);
# ``num_verbs`` takes a prefix. Every verb is one bert-base-uncased WordPiece and
# a frequent first word of real YouCook II captions.
VERBS = (
    ("add", "adding", "hinzufügen", "añadir", ALL),
    ("cut", "cutting", "schneiden", "cortar", (PRODUCE, PROTEIN, STARCH, DAIRY)),
    ("mix", "mixing", "mischen", "mezclar", ALL),
    ("pour", "pouring", "gießen", "verter", (LIQUID, DRY)),
    ("fry", "frying", "braten", "freír", (PRODUCE, PROTEIN, STARCH)),
    ("stir", "stirring", "umrühren", "remover", ALL),
    ("chop", "chopping", "hacken", "picar", (PRODUCE, PROTEIN)),
    ("boil", "boiling", "kochen", "hervir", (LIQUID, PRODUCE, PROTEIN, STARCH)),
    ("slice", "slicing", "aufschneiden", "rebanar", (PRODUCE, PROTEIN, STARCH, DAIRY)),
    ("heat", "heating", "erhitzen", "calentar", (LIQUID, DAIRY, STARCH)),
    ("spread", "spreading", "verteilen", "untar", (DAIRY, LIQUID, DRY, STARCH)),
    ("peel", "peeling", "schälen", "pelar", (PRODUCE, PROTEIN)),
    ("place", "placing", "legen", "colocar", ALL),
    ("cook", "cooking", "garen", "cocinar", (PRODUCE, PROTEIN, STARCH)),
    ("roll", "rolling", "rollen", "enrollar", (STARCH, PROTEIN)),
    ("drain", "draining", "abgießen", "escurrir", (LIQUID, STARCH, PRODUCE)),
    ("remove", "removing", "entfernen", "quitar", ALL),
    ("cover", "covering", "abdecken", "tapar", (PRODUCE, PROTEIN, STARCH)),
    ("season", "seasoning", "würzen", "sazonar", (PRODUCE, PROTEIN, STARCH)),
    ("coat", "coating", "panieren", "rebozar", (PROTEIN, PRODUCE, STARCH)),
    ("flip", "flipping", "wenden", "voltear", (PROTEIN, STARCH)),
    ("blend", "blending", "pürieren", "licuar", (PRODUCE, LIQUID, DAIRY)),
    ("melt", "melting", "schmelzen", "derretir", (DAIRY,)),
    ("squeeze", "squeezing", "auspressen", "exprimir", (PRODUCE, LIQUID)),
    ("toss", "tossing", "schwenken", "saltear", (PRODUCE, STARCH, PROTEIN)),
    ("dip", "dipping", "tunken", "mojar", (PROTEIN, PRODUCE, STARCH)),
    ("wrap", "wrapping", "einwickeln", "envolver", (PROTEIN, STARCH, PRODUCE)),
    ("grill", "grilling", "grillen", "asar", (PROTEIN, PRODUCE, STARCH)),
)

# (noun, German, Spanish, categories). Singular forms that are one bert-base-uncased
# WordPiece (so a lemmatised prediction can match them) and frequent in YouCook II.
NOUNS = (
    ("onion", "zwiebel", "cebolla", (PRODUCE,)),
    ("egg", "ei", "huevo", (PROTEIN, LIQUID)),
    ("oil", "öl", "aceite", (LIQUID,)),
    ("salt", "salz", "sal", (DRY,)),
    ("chicken", "hähnchen", "pollo", (PROTEIN,)),
    ("garlic", "knoblauch", "ajo", (PRODUCE,)),
    ("rice", "reis", "arroz", (STARCH,)),
    ("sauce", "soße", "salsa", (LIQUID,)),
    ("water", "wasser", "agua", (LIQUID,)),
    ("pepper", "pfeffer", "pimienta", (DRY, PRODUCE)),
    ("flour", "mehl", "harina", (DRY, STARCH)),
    ("butter", "butter", "mantequilla", (DAIRY,)),
    ("cheese", "käse", "queso", (DAIRY,)),
    ("bread", "brot", "pan", (STARCH,)),
    ("tomato", "tomate", "tomate", (PRODUCE,)),
    ("potato", "kartoffel", "papa", (PRODUCE, STARCH)),
    ("beef", "rindfleisch", "carne", (PROTEIN,)),
    ("milk", "milch", "leche", (LIQUID, DAIRY)),
    ("sugar", "zucker", "azúcar", (DRY,)),
    ("dough", "teig", "masa", (STARCH,)),
    ("pasta", "nudeln", "pasta", (STARCH,)),
    ("ginger", "ingwer", "jengibre", (PRODUCE,)),
    ("pork", "schweinefleisch", "cerdo", (PROTEIN,)),
    ("shrimp", "garnelen", "camarones", (PROTEIN,)),
    ("carrot", "karotte", "zanahoria", (PRODUCE,)),
    ("cabbage", "kohl", "repollo", (PRODUCE,)),
    ("lemon", "zitrone", "limón", (PRODUCE, LIQUID)),
    ("bacon", "speck", "tocino", (PROTEIN,)),
    ("fish", "fisch", "pescado", (PROTEIN,)),
    ("mushroom", "pilze", "champiñones", (PRODUCE,)),
    ("corn", "mais", "maíz", (PRODUCE, STARCH)),
    ("steak", "steak", "bistec", (PROTEIN,)),
)

# A recipe's dish is named after its main ingredient: "onion soup".
DISH_KINDS = ("soup", "stew", "salad", "stir fry", "curry", "bake", "pie", "skillet")

# Speech templates. {v} verb, {ving} gerund, {n} noun, {o} another noun, {dish}.
NARRATION = {
    "en": ("now we {v} the {n}", "{v} some {n} in the pan", "next i'm going to {v} the {n}",
           "let's {v} the {n}", "go ahead and {v} the {n}", "you want to {v} the {n} like this",
           "then {v} the {n} for a bit", "okay so now we {v} our {n}",
           "i like to {v} the {n} first", "take the {n} and {v} it",
           "now i'm {ving} the {n}", "we are {ving} the {n} right now",
           "just {v} the {n} a little"),
    "de": ("jetzt {n} {v}", "als nächstes {n} {v}", "wir müssen {n} {v}", "dann {n} {v}",
           "einfach {n} {v}", "jetzt werden wir {n} {v}"),
    "es": ("ahora vamos a {v} {n}", "luego {v} {n}", "tenemos que {v} {n}",
           "después hay que {v} {n}", "ahora {v} {n} así"),
}
FOLLOW_UP = {  # mentions the step's noun or verb again, not both
    "en": ("make sure the {n} is nice and even", "this {n} is really fresh",
           "keep {ving} it", "be careful not to {v} it too much", "the {n} smells so good"),
    "de": ("{n} ist ganz frisch", "vorsichtig {v}"),
    "es": ("{n} está muy fresco", "con cuidado al {v}"),
}
OTHER_NOUN = {  # mentions a noun that is not the step's
    "en": ("you can also use {o} here", "if you don't have {n} you can use {o}",
           "i will show you the {o} later"),
    "de": ("man kann auch {o} nehmen",),
    "es": ("también se puede usar {o}",),
}
CHATTER = {
    "en": ("don't forget to subscribe", "let me know in the comments", "this is my favorite part",
           "my kids love this one", "it's really easy", "hit the like button if you enjoy this",
           "okay", "alright so yeah", "i got this recipe from my mom"),
    "de": ("vergesst nicht zu abonnieren", "das ist ganz einfach", "schreibt es in die kommentare"),
    "es": ("no olviden suscribirse", "es muy fácil", "déjenme un comentario"),
}
GREETING = {
    "en": ("hi everyone welcome back to my kitchen", "hey guys welcome back to the channel",
           "hello and welcome"),
    "de": ("hallo zusammen willkommen in meiner küche", "hallo und willkommen"),
    "es": ("hola a todos bienvenidos a mi cocina", "hola y bienvenidos"),
}
INTRO = {
    "en": ("today we are making {dish}", "today i'm going to show you how to make {dish}"),
    "de": ("heute kochen wir etwas leckeres",),
    "es": ("hoy vamos a cocinar algo rico",),
}
OUTRO = {
    "en": ("and that's it", "thanks for watching", "see you next time", "enjoy your meal"),
    "de": ("das war's", "danke fürs zuschauen"),
    "es": ("y eso es todo", "gracias por ver"),
}
# Evaluation captions: the verb first, then the noun, as in YouCook II; no other
# verb or noun, so the labels a tagger finds are exactly the step's.
CAPTIONS = ("{v} the {n}", "{v} some {n}", "{v} the {n} well", "{v} the {n} carefully",
            "{v} the {n} slowly", "{v} a little {n}", "{v} the {n} gently", "{v} the fresh {n}")


@dataclasses.dataclass(frozen=True)
class WorldConfig:
  """The knobs of the world; the defaults are the bundled demo world."""

  num_verbs: int = 12  # verbs used (a prefix of VERBS)
  num_nouns: int = 20  # nouns used (a prefix of NOUNS)
  num_recipes: int = 16  # recipe types, each a fixed sequence of steps
  recipe_steps: tuple[int, int] = (5, 8)  # min, max steps of a recipe
  implausible_weight: float = 0.05  # prior weight of a verb-noun pair of wrong category
  latent_dim: int = 32  # rank of the feature manifold
  verb_scale: float = 0.6  # std per latent dimension of a verb prototype
  noun_scale: float = 0.6  # same for a noun prototype
  style_scale: float = 0.5  # per-video offset (kitchen, camera, lighting)
  drift_scale: float = 0.45  # slowly varying drift (AR(1), std)
  drift_rho: float = 0.85  # AR(1) coefficient of the drift from clip to clip
  clip_noise: float = 0.9  # independent latent noise per clip
  obs_noise: float = 0.1  # independent noise per feature dimension
  step_clips: tuple[int, int] = (3, 8)  # min, max clips of a step
  keep_step: float = 0.85  # probability a video keeps a recipe step as written
  narrate_step: float = 0.85  # probability a step is narrated at all
  second_sentence: float = 0.35  # probability of a follow-up or other-noun sentence
  chatter: float = 0.2  # probability of an off-topic sentence after a step
  speech_lag_seconds: float = 1.5  # std of narration onset around the step's start


@dataclasses.dataclass(frozen=True)
class Recipe:
  """A recipe type: a YouCook II style numeric id, a dish and its steps."""

  recipe_type: str
  dish: str
  steps: tuple[tuple[int, int], ...]  # (verb index, noun index)


@dataclasses.dataclass(frozen=True)
class Step:
  """One step of a video: its latent verb and noun and its clips [start, end)."""

  verb: int
  noun: int
  start_clip: int
  end_clip: int


@dataclasses.dataclass(frozen=True)
class VideoPlan:
  """The latent timeline of one video."""

  recipe: Recipe
  num_clips: int
  steps: tuple[Step, ...]


@dataclasses.dataclass(frozen=True)
class Sentence:
  """One spoken sentence: its words and each word's start and end in seconds."""

  words: tuple[str, ...]
  starts: tuple[float, ...]
  ends: tuple[float, ...]

  @property
  def start(self) -> float:
    """Start of the first word."""
    return self.starts[0]

  @property
  def end(self) -> float:
    """End of the last word."""
    return self.ends[-1]

  @property
  def text(self) -> str:
    """The words joined by spaces (lowercase, unpunctuated, as ASR gives them)."""
    return " ".join(self.words)


def balanced_joint(mask_weights: np.ndarray, iterations: int = 500) -> np.ndarray:
  """Sinkhorn scaling of a positive [V, N] weight matrix to uniform marginals.

  The result is the verb-noun joint distribution: every verb and every noun is
  equally likely overall, so a language model's prior over either is flat,
  while implausible pairs stay rare.
  """
  joint = mask_weights / mask_weights.sum()
  rows, cols = joint.shape
  for _ in range(iterations):
    joint *= (1.0 / rows) / joint.sum(axis=1, keepdims=True)
    joint *= (1.0 / cols) / joint.sum(axis=0, keepdims=True)
  return joint / joint.sum()


class World:
  """The fixed part of the world: vocabulary, joint, recipes, feature prototypes."""

  def __init__(self, config: WorldConfig, feature_dim: int, seed: int):
    if not 2 <= config.num_verbs <= len(VERBS):
      raise ValueError(f"num_verbs must be in [2, {len(VERBS)}], got {config.num_verbs}")
    if not 2 <= config.num_nouns <= len(NOUNS):
      raise ValueError(f"num_nouns must be in [2, {len(NOUNS)}], got {config.num_nouns}")
    if feature_dim < 1:
      raise ValueError(f"feature_dim must be positive, got {feature_dim}")
    self.config = config
    self.feature_dim = feature_dim
    self.seed = seed
    self.verbs = VERBS[:config.num_verbs]
    self.nouns = NOUNS[:config.num_nouns]
    # One stream per purpose: the latent structure does not depend on feature_dim.
    proto_rng, recipe_rng, projection_rng = (
        np.random.default_rng(c) for c in np.random.SeedSequence([seed, 0]).spawn(3))
    self.plausible = np.array([[bool(set(v[4]) & set(n[3])) for n in self.nouns]
                               for v in self.verbs])
    self.joint = balanced_joint(np.where(self.plausible, 1.0, config.implausible_weight))
    r = config.latent_dim
    self.verb_protos = proto_rng.standard_normal((len(self.verbs), r)) * config.verb_scale
    self.noun_protos = proto_rng.standard_normal((len(self.nouns), r)) * config.noun_scale
    self.idle_proto = proto_rng.standard_normal(r) * config.verb_scale  # talking to camera
    # A random linear map to feature space plus a bias, then ReLU: features are
    # non-negative and informative only through the latent, whatever the dim.
    self.projection = (projection_rng.standard_normal((r, feature_dim))
                       / np.sqrt(r)).astype(np.float32)
    self.bias = projection_rng.normal(0.1, 0.3, feature_dim).astype(np.float32)
    self.recipes = self._make_recipes(recipe_rng)

  def _make_recipes(self, rng: np.random.Generator) -> tuple[Recipe, ...]:
    """Recipes whose pooled steps use every verb and every noun equally often.

    Verbs and nouns are dealt round-robin (exact uniform marginals even for a
    few recipes, so the recipes do not tilt the language prior), paired at
    random, and implausible pairs are repaired by swapping nouns between steps
    where the swap makes both pairs plausible.
    """
    cfg = self.config
    lengths = rng.integers(cfg.recipe_steps[0], cfg.recipe_steps[1] + 1, cfg.num_recipes)
    total = int(lengths.sum())
    deal = lambda n: rng.permutation(np.resize(rng.permutation(n), total))
    verbs, nouns = deal(len(self.verbs)), deal(len(self.nouns))
    for i in range(total):
      if self.plausible[verbs[i], nouns[i]]:
        continue
      for j in rng.permutation(total):
        if self.plausible[verbs[i], nouns[j]] and self.plausible[verbs[j], nouns[i]]:
          nouns[i], nouns[j] = nouns[j], nouns[i]
          break
    recipes, offset = [], 0
    for i, length in enumerate(lengths):
      steps = tuple((int(v), int(n)) for v, n in zip(verbs[offset:offset + length],
                                                      nouns[offset:offset + length]))
      offset += length
      counts = np.bincount([n for _, n in steps], minlength=len(self.nouns))
      dish = f"{self.nouns[int(counts.argmax())][0]} {DISH_KINDS[i % len(DISH_KINDS)]}"
      recipes.append(Recipe(recipe_type=str(101 + i), dish=dish, steps=steps))
    return tuple(recipes)

  def sample_pair(self, rng: np.random.Generator) -> tuple[int, int]:
    """A (verb, noun) pair drawn from the joint."""
    p = int(rng.choice(self.joint.size, p=self.joint.ravel()))
    return p // len(self.nouns), p % len(self.nouns)

  def describe(self) -> dict:
    """A JSON-serialisable description (for ``world.json``)."""
    return {
        "verbs": [v[0] for v in self.verbs],
        "nouns": [n[0] for n in self.nouns],
        "translations": {
            "de": {"verbs": {v[0]: v[2] for v in self.verbs},
                   "nouns": {n[0]: n[1] for n in self.nouns}},
            "es": {"verbs": {v[0]: v[3] for v in self.verbs},
                   "nouns": {n[0]: n[2] for n in self.nouns}},
        },
        "joint": [[round(float(x), 6) for x in row] for row in self.joint],
        "recipes": [{"recipe_type": r.recipe_type, "dish": r.dish,
                     "steps": [[self.verbs[v][0], self.nouns[n][0]] for v, n in r.steps]}
                    for r in self.recipes],
        "caption_templates": list(CAPTIONS),
        "config": dataclasses.asdict(self.config),
    }


def plan_video(world: World, rng: np.random.Generator, recipe: Recipe) -> VideoPlan:
  """Lays out a video: intro, the recipe's steps (some replaced), gaps, outro."""
  cfg = world.config
  pairs = [pair if rng.random() < cfg.keep_step else world.sample_pair(rng)
           for pair in recipe.steps]
  steps, clip = [], int(rng.integers(2, 5))  # intro: the cook talks to the camera
  for verb, noun in pairs:
    length = int(rng.integers(cfg.step_clips[0], cfg.step_clips[1] + 1))
    steps.append(Step(verb, noun, clip, clip + length))
    clip += length + (0 if rng.random() < 0.5 else int(rng.integers(1, 3)))
  num_clips = clip + int(rng.integers(1, 4))  # outro
  return VideoPlan(recipe=recipe, num_clips=num_clips, steps=tuple(steps))


def render_features(world: World, plan: VideoPlan, rng: np.random.Generator) -> np.ndarray:
  """Clip features [num_clips, feature_dim] (float32, non-negative) of a plan."""
  cfg = world.config
  t, r = plan.num_clips, cfg.latent_dim
  content = np.tile(world.idle_proto, (t, 1))
  for step in plan.steps:
    content[step.start_clip:step.end_clip] = (world.verb_protos[step.verb]
                                              + world.noun_protos[step.noun])
  # Actions blend into each other: smooth the content over neighbouring clips.
  padded = np.concatenate([content[:1], content, content[-1:]])
  content = 0.2 * padded[:-2] + 0.6 * padded[1:-1] + 0.2 * padded[2:]
  drift = np.empty((t, r))
  drift[0] = rng.standard_normal(r) * cfg.drift_scale
  innovation = np.sqrt(1.0 - cfg.drift_rho**2) * cfg.drift_scale
  for i in range(1, t):
    drift[i] = cfg.drift_rho * drift[i - 1] + innovation * rng.standard_normal(r)
  style = rng.standard_normal(r) * cfg.style_scale
  latent = (content + style + drift
            + cfg.clip_noise * rng.standard_normal((t, r))).astype(np.float32)
  # einsum, not matmul: a BLAS call this small is slowed, not sped up, by
  # threads when the cores are busy.
  features = np.einsum("tr,rd->td", latent, world.projection) + world.bias
  features += cfg.obs_noise * rng.standard_normal(features.shape, dtype=np.float32)
  return np.maximum(features, 0.0).astype(np.float32)


def _fill(template: str, world: World, language: str, verb: int, noun: int,
          other: int, dish: str) -> str:
  """Fills a template with the words of ``language``."""
  column = {"en": 0, "de": 1, "es": 2}[language]
  v = world.verbs[verb]
  verb_word = (v[0], v[2], v[3])[column]
  return template.format(v=verb_word, ving=v[1], n=world.nouns[noun][column],
                         o=world.nouns[other][column], dish=dish)


def narrate(world: World, plan: VideoPlan, rng: np.random.Generator, language: str,
            clip_seconds: float) -> list[Sentence]:
  """The speech of a video: timed sentences, in ``language`` (en, de or es).

  Each step is narrated (probability ``narrate_step``) by a sentence naming its
  verb and noun, starting near the step's start with a Gaussian lead or lag;
  sometimes a second sentence names only the noun or verb, or another noun;
  off-topic chatter, an intro and an outro surround them. Sentences never
  overlap: a sentence that would collide starts after the previous one.
  """
  cfg = world.config
  wanted: list[tuple[float, str]] = []  # (desired start, text)
  pick = lambda options: options[int(rng.integers(len(options)))]
  fill = lambda tpl, v, n, o: _fill(tpl, world, language, v, n, o, plan.recipe.dish)
  if rng.random() < 0.7:
    wanted.append((float(rng.uniform(0.1, 0.8)), fill(pick(GREETING[language]), 0, 0, 0)))
  wanted.append((1.0, fill(pick(INTRO[language]), 0, 0, 0)))
  for step in plan.steps:
    start = step.start_clip * clip_seconds
    other = int(rng.integers(len(world.nouns) - 1))
    other += other >= step.noun  # any noun but the step's
    if rng.random() < cfg.narrate_step:
      onset = start + rng.normal(0.0, cfg.speech_lag_seconds)
      wanted.append((onset, fill(pick(NARRATION[language]), step.verb, step.noun, other)))
      if rng.random() < cfg.second_sentence:
        options = FOLLOW_UP[language] if rng.random() < 0.6 else OTHER_NOUN[language]
        wanted.append((onset + 0.5, fill(pick(options), step.verb, step.noun, other)))
    if rng.random() < cfg.chatter:
      end = step.end_clip * clip_seconds
      wanted.append((end - 1.0, fill(pick(CHATTER[language]), 0, 0, 0)))
  duration = plan.num_clips * clip_seconds
  wanted.append((duration - 3.0, fill(pick(OUTRO[language]), 0, 0, 0)))
  wanted.sort(key=lambda item: item[0])

  sentences, clock = [], 0.0
  for desired, text in wanted:
    t = max(desired, clock + float(rng.uniform(0.5, 2.0)), 0.05)
    words, starts, ends = text.split(), [], []
    for word in words:
      length = 0.08 + 0.04 * len(word) + float(rng.uniform(0.0, 0.08))
      starts.append(round(t, 3))
      ends.append(round(t + length, 3))
      t += length + float(rng.uniform(0.02, 0.08))
    if ends[-1] > duration:  # the video is over
      break
    sentences.append(Sentence(tuple(words), tuple(starts), tuple(ends)))
    clock = ends[-1]
  return sentences


def caption(world: World, step: Step, rng: np.random.Generator) -> str:
  """An evaluation caption naming the step's verb and noun."""
  template = CAPTIONS[int(rng.integers(len(CAPTIONS)))]
  return template.format(v=world.verbs[step.verb][0], n=world.nouns[step.noun][0])

