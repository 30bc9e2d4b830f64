"""Every text LeadTrail shows to people, in Russian, one module per feature, and the one way numbers,
money, times and HTML are written into them (``numbers``, ``html``).

It sits in ``reports`` so that the rules and reports there and everything in ``bot`` share it; ``storage``
holds no text. Texts are HTML for Telegram unless a module says otherwise; every value that came from a
source or a person goes through ``html`` before it is put in.
"""
