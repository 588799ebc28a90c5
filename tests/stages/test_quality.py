from pipeline.config import QualityConfig
from stages.quality import C4Quality, FineWebQuality, GopherQuality, GopherRepetition, quality_filters
from tests.fixtures import make_doc

GOOD = """The village council met on a rainy evening in early October to discuss the state of the old bridge.
Several farmers explained that they needed it repaired before the harvest, since the detour through the hills added an hour to every trip.
The treasurer reported that the repair fund held enough money for new timber but not for a stone foundation.
After a long debate, the members agreed to ask the neighbouring town for a loan and to start work within a month.
One elderly resident reminded everyone that the bridge had been rebuilt twice before, once after a flood and once after a fire.
Children from the local school had drawn pictures of the bridge, and these were displayed on the walls of the meeting hall.
The mayor thanked the volunteers who had cleared fallen branches from the river banks during the summer storms.
Before closing the meeting, the council scheduled a public hearing so that every household could comment on the plan."""


def test_good_text_passes_all_four():
    for f in quality_filters(QualityConfig(), "unused"):
        assert f.filter(make_doc(GOOD)) is True, f.name


def test_reasons_are_prefixed_snake_case():
    assert GopherRepetition().filter(make_doc("spam spam spam\n" * 50)) == (False, "gopher_rep_dup_line_frac")
    assert GopherQuality().filter(make_doc("too short")) == (False, "gopher_short_doc")
    assert C4Quality(filter_no_terminal_punct=False).filter(make_doc(GOOD + "\nvar x = {a: 1};")) == (False, "c4_curly_bracket")
    assert FineWebQuality().filter(make_doc("a\nb\nc\nd")) == (False, "fineweb_line_punct_ratio")


def test_filters_can_be_switched_off():
    assert quality_filters(QualityConfig(c4=False, fineweb=False), "unused").__len__() == 2
