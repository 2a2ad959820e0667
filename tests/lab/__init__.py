"""The lab network: namespaces on a bridge with real daemons, for tests that cross a network.

- :mod:`tests.lab.scenario` describes a lab (frozen dataclasses); :mod:`tests.lab.scenarios` has
  ``demo()`` and ``small()``, :mod:`tests.lab.dhcp_lab` every kind of DHCP server on one link.
- :mod:`tests.lab.daemons` runs each host's daemons (dnsmasq, Kea, tinyproxy, socat, the small
  Python servers) at their distribution defaults, saying why for every flag beyond addresses,
  interfaces, lease/pid files and ignoring the machine's config files.
- :mod:`tests.lab.builder` builds one (``with Lab.build(demo()) as lab: …``) and changes it.
- :mod:`tests.lab.netns` runs commands in a namespace and moves a thread into one (``inside``).
- :mod:`tests.lab.fixtures` has the pytest fixtures; ``python -m tests.lab`` the command line.

All addresses are in 198.18.0.0/15 and nothing is created in the root network namespace.
"""
