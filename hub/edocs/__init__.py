"""Document exchange between agencies (edXML): submission, guaranteed delivery, status feedback."""
