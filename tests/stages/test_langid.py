import pickle

from stages.langid import LanguageID
from tests.fixtures import make_doc

EN = "The weather was lovely this morning, so we walked along the river and talked about the book we were reading."
DE = "Das Wetter war heute Morgen herrlich, also sind wir am Fluss entlang spaziert und haben über das Buch gesprochen."


def test_english_kept_with_score():
    doc = make_doc(EN)
    assert LanguageID().filter(doc) is True
    assert doc.metadata["language"] == "en" and doc.metadata["language_score"] >= 0.65
    assert isinstance(doc.metadata["language_score"], float)


def test_other_language_dropped_but_labelled():
    doc = make_doc(DE)
    assert LanguageID().filter(doc) == (False, "language_not_kept")
    assert doc.metadata["language"] == "de"


def test_several_languages_and_threshold():
    lid = LanguageID(languages=("en", "de"), threshold=0.65)
    assert lid.filter(make_doc(DE)) is True
    assert LanguageID(threshold=1.0).filter(make_doc(EN)) == (False, "low_score")


def test_picklable_after_use_and_provenance():
    lid = LanguageID()
    lid.filter(make_doc(EN))
    clone = pickle.loads(pickle.dumps(lid))
    assert clone.filter(make_doc(EN)) is True
    assert len(lid.provenance()["sha256"]) == 64
