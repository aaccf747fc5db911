"""A small labelled retrieval set where each signal alone fails on part of it.

* ``paraphrase``: questions that share almost no words with their fact (vectors
  find them, BM25 mostly does not);
* ``identifier``: questions naming one of many near-identical records by its code
  (BM25 finds the code; vectors see 40 look-alikes).
"""

from __future__ import annotations

import random

PARAPHRASES: list[tuple[str, str]] = [
    ("Ada is allergic to peanuts.", "Which food could make her sick?"),
    ("The quarterly board meeting moved to the Geneva office.",
     "Where will the directors gather this season?"),
    ("Our staging cluster runs on ARM machines.",
     "What processor architecture does the test environment use?"),
    ("Bob cannot work on Fridays because of childcare.", "Which weekday is he unavailable?"),
    ("The marketing budget was cut by a third.", "How much did advertising spending shrink?"),
    ("Customer support answers within four hours.", "How quickly do helpdesk agents reply?"),
    ("The mobile app crashes when the phone is offline.",
     "What happens without a network connection on handsets?"),
    ("Ada prefers to be contacted by email, never by phone.", "How does she like to be reached?"),
    ("The warehouse in Rotterdam closes in December.", "Which depot shuts down at year end?"),
    ("Invoices are paid within thirty days of receipt.", "What are our payment terms?"),
    ("The CEO dislikes slide decks longer than ten pages.",
     "How long should presentations for the boss be?"),
    ("Backups are copied to a second region every night.",
     "How is data protected against a datacenter loss?"),
    ("New hires get a laptop on their first morning.", "When do recruits receive computers?"),
    ("The product launch slipped from May to September.", "When is the release now expected?"),
    ("The espresso machine on floor three is broken.", "Where can't I get coffee?"),
    ("Passwords must be changed every ninety days.", "How often do credentials expire?"),
    ("The Lisbon team speaks Portuguese in meetings.",
     "What language do colleagues in Portugal use?"),
    ("Sales doubled after the price was lowered.", "What happened to revenue when we got cheaper?"),
    ("The database migration needs two hours of downtime.",
     "How long will the service be unavailable during the schema change?"),
    ("Ada's daughter starts school in the autumn.", "When does her child begin classes?"),
]

CUSTOMERS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
             "Tyrell", "Cyberdyne"]
STATUSES = ["paid", "overdue", "disputed", "pending", "refunded"]


def labelled_set(seed: int = 7) -> tuple[list[str], list[tuple[str, int, str]]]:
    """Documents, and queries as ``(query, index of the relevant document, kind)``."""
    rng = random.Random(seed)
    docs = [fact for fact, _ in PARAPHRASES]
    queries = [(q, i, "paraphrase") for i, (_, q) in enumerate(PARAPHRASES)]
    codes = rng.sample(range(1000, 9999), 40)
    for n, code in enumerate(codes):
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        status = STATUSES[n % len(STATUSES)]
        docs.append(f"Invoice INV-{code} for {customer} is {status}.")
        if n % 2 == 0:
            queries.append((f"What is the status of invoice INV-{code}?", len(docs) - 1,
                            "identifier"))
    return docs, queries
