"""The three pretraining regimes of VideoBERT and their ids in the model batch."""

TEXT = 0  # text-only masked language modelling
VIDEO = 1  # video-only masked visual-word modelling
VIDEO_TEXT = 2  # video-text: masked modelling on both plus alignment

NAMES = ("text", "video", "video_text")
NUM_OBJECTIVES = len(NAMES)
