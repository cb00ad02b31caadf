"""The quality of the picks on a small labelled corpus of our own, with the real model and Redis:
several topics share the digest, an acronym finds the papers that use it, and a query about
nothing in the corpus is told so."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from recommender.service import NoCloseMatch

GNN = {
    "q-gnn-1": ("Graph attention networks for node classification on citation graphs",
                "We learn node representations by attending over neighbourhoods in a graph."),
    "q-gnn-2": ("Over-smoothing in deep graph neural networks",
                "Stacking message passing layers makes node features indistinguishable."),
    "q-gnn-3": ("Expressive power of message passing graph neural networks",
                "We relate graph neural networks to the Weisfeiler-Leman isomorphism test."),
    "q-gnn-4": ("Scalable training of graph convolutional networks on billion-edge graphs",
                "Neighbourhood sampling lets graph convolutions train on very large graphs."),
}
ALIGNMENT = {
    "q-rlhf-1": ("Reward model overoptimization in RLHF",
                 "Optimizing a language model too hard against a learned reward model during RLHF "
                 "degrades true quality; we measure the effect across model sizes."),
    "q-rlhf-2": ("Scaling RLHF with AI feedback",
                 "Replacing human preference labels with AI-written critiques makes RLHF cheaper "
                 "for aligning chat assistants."),
    "q-rlhf-3": ("Length bias of reward models in RLHF",
                 "RLHF makes language model answers longer because reward models prefer verbose "
                 "text; we correct the bias."),
    "q-grpo-1": ("Reasoning gains from GRPO on math word problems",
                 "Training a language model with GRPO on verifiable answers improves its "
                 "step-by-step reasoning."),
    "q-grpo-2": ("Group-relative advantages without a critic",
                 "GRPO estimates advantages from a group of sampled answers, so no value "
                 "network is trained."),
    "q-dpo": ("Direct preference optimization without a reward model",
              "We align language models to human preference pairs with a classification loss, "
              "skipping reinforcement learning and the separate reward model."),
}
ADAPTERS = {
    "q-lora-1": ("Parameter-efficient fine-tuning of large models",
                 "We fine-tune with LoRA on a single GPU and match full fine-tuning."),
    "q-lora-2": ("Quantised adapters for instruction tuning",
                 "QLoRA-style 4-bit base weights with LoRA adapters cut memory by three quarters."),
    "q-lora-3": ("Where to put the adapters",
                 "An ablation of LoRA rank and placement across attention and MLP layers."),
    "q-prompt": ("Prompt tuning for large language models",
                 "Soft prompts are learned while the model weights stay frozen."),
    "q-distil": ("Distilling a large language model into a small one",
                 "A student model is trained on the teacher's outputs for cheaper inference."),
}
OTHER = {
    "q-robot": ("Policy optimization for robot manipulation from play data",
                "A latent action prior from teleoperated play data speeds up reinforcement "
                "learning of grasping and stacking."),
    "q-vision": ("Vision transformers for image classification",
                 "Patches of an image are treated as tokens for a transformer encoder."),
    "q-speech": ("Streaming speech recognition with conformer encoders",
                 "A chunked conformer lowers the latency of automatic speech recognition."),
    "q-ocean": ("Ocean acidification and coral reef calcification",
                "Lower seawater pH slows the growth of reef-building corals."),
}
CORPUS = {**GNN, **ALIGNMENT, **ADAPTERS, **OTHER}
USES_RLHF = {pid for pid, (title, abstract) in CORPUS.items() if "RLHF" in title + abstract}
USES_LORA = {"q-lora-1", "q-lora-2", "q-lora-3"}
USES_GRPO = {"q-grpo-1", "q-grpo-2"}


@pytest.fixture
def labelled(rec):
    rec.add_papers([{"id": pid, "title": title, "abstract": abstract}
                    for pid, (title, abstract) in CORPUS.items()])
    return rec


def test_two_topics_share_the_digest_best_first(labelled):
    person = "console:local:two-topics"
    labelled.subscribe(person, "graph neural networks")
    labelled.subscribe(person, "aligning language models with human preferences")
    picks = labelled.recommend(person, k=4)
    ids = [r.paper.id for r in picks]
    # two topics of equal weight: two seats each, not four papers of the closer one
    assert len(set(ids) & set(GNN)) == 2 and len(set(ids) & set(ALIGNMENT)) == 2, ids
    assert [r.score for r in picks] == sorted((r.score for r in picks), reverse=True)
    assert {r.why for r in picks} == {"matches your topic 'graph neural networks'",
                                      "matches your topic 'aligning language models with human preferences'"}


def test_an_acronym_finds_the_papers_that_use_it(labelled):
    person = "console:local:acronym"
    labelled.subscribe(person, "LoRA")
    picks = [r.paper.id for r in labelled.recommend(person, k=3)]
    assert set(picks) == USES_LORA, picks
    labelled.subscribe("console:local:rlhf", "RLHF")
    picks = [r.paper.id for r in labelled.recommend("console:local:rlhf", k=3)]
    assert set(picks) == USES_RLHF, picks
    labelled.subscribe("console:local:grpo", "GRPO")
    picks = [r.paper.id for r in labelled.recommend("console:local:grpo", k=2)]
    assert set(picks) == USES_GRPO, picks
    hits = [r.paper.id for r in labelled.search("RLHF", k=5)]
    assert set(hits[:3]) == USES_RLHF, hits
    # ...and through the papers that use it, the one that is about it in other words
    assert "q-dpo" in hits, hits
    assert "q-ocean" not in hits, hits


def test_a_query_about_nothing_in_the_corpus_is_told_so(labelled):
    with pytest.raises(NoCloseMatch, match="Nothing I know is a close match for 'medieval"):
        labelled.search("medieval french troubadour poetry")
    hits = [r.paper.id for r in labelled.search("coral reefs and ocean acidification", k=5)]
    assert hits[0] == "q-ocean"


def test_cli_search_says_nothing_is_close_in_one_line(labelled, cli_env):
    result = CliRunner().invoke(main, ["search", "medieval french troubadour poetry"], env=cli_env)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "paperbot: Nothing I know is a close match for 'medieval french troubadour poetry': try other words."]
