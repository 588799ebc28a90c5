"""The scrubbing of the ledger's other text fields (stages/pii/fields.py)."""

from stages.pii.fields import scrub_text
from stages.pii.scrub import PIIScrubber


class CountingScrubber(PIIScrubber):
    """A real scrubber that counts the texts it scrubs."""

    def scrub(self, text, language=None, memo=None):
        self.calls = getattr(self, "calls", 0) + 1
        return super().scrub(text, language, memo)


def test_a_repeated_detail_is_scrubbed_once_with_the_same_answer():
    scrubber = CountingScrubber()
    detail = "call 212-555-0123 or mail jane.roe@example.org (en 0.0011 < 0.01)"
    first = scrub_text(scrubber, detail)
    assert first == ("call 555-0123 or mail firstname.lastname@example.org (en 0.0011 < 0.01)", 2)
    assert scrub_text(scrubber, detail) == first
    assert scrubber.calls == 1
    assert scrub_text(scrubber, "no digits here") == ("no digits here", 0) and scrubber.calls == 1
    other = CountingScrubber(replacement="tag")  # another scrubber's answer is its own
    assert scrub_text(other, detail) == ("call <PHONE_NUMBER> or mail <EMAIL_ADDRESS> (en 0.0011 < 0.01)", 2)
