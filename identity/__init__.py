"""Identity service: customers, consent, enrolment, encrypted templates, erasure, audit."""
