"""Every fixed text of the Art. 15 disclosure PDF, in English and German (Sie-form).

The two dictionaries have the same keys (a test checks it). Placeholders in braces are filled
by reports.rendering with values already formatted for the language. Texts that describe the
law say what the law says, in plain words; texts that depend on the organization (purposes,
retention, human review procedure, ...) are not here but come from the content.
"""

# The en dashes ("a–g", "Verarbeitung – einschließlich") are the typographically right ones.
# ruff: noqa: RUF001, RUF003

EN = {
    "doc_title": "Access to your personal data (Art. 15 GDPR)",
    "doc_subject": "The personal data we hold about you and how our scoring model decided about you",
    "page": "Page",
    "of": "of",
    # 1. Cover
    "h_request": "1. Your request",
    "controller": "Controller",
    "dpo": "Data protection officer",
    "request_id": "Request ID",
    "subject_name": "Name",
    "subject_ref": "Pseudonymous reference",
    "received_on": "Request received on",
    "due_on": "Answer due by",
    "extended_until": "Deadline extended until",
    "extension_reason": "Reason for the extension",
    "identity_verification": "How your identity was verified",
    "document_version": "Version of this document",
    "generated_at": "Document created on",
    "deadline_note": "We must answer within one month of receiving your request (Art. 12(3) GDPR). If a "
                     "request is complex, we may extend this by up to two further months, but we must tell "
                     "you so within the first month and give our reasons.",
    "h_integrity": "Integrity of this document",
    "content_sha256": "SHA-256 of disclosure.json",
    "audit_seq": "Audit trail entry (sequence number)",
    "audit_event_hash": "Hash of the audit trail entry",
    "checkpoint_tree_size": "Signed checkpoint: number of entries",
    "checkpoint_root_hash": "Signed checkpoint: root hash",
    "checkpoint_chain_hash": "Signed checkpoint: chain hash",
    "checkpoint_key": "Signing key",
    "checkpoint_signed_at": "Checkpoint signed on",
    "integrity_text": "The SHA-256 value above is the fingerprint of the file disclosure.json attached to "
                      "this PDF, which contains everything this document says about you in "
                      "machine-readable form; if a single character of that file were changed, the value "
                      "would no longer match. The value is recorded in the audit trail entry shown, and "
                      "that entry is covered by the signed checkpoint reproduced in full in Annex B.",
    # 2. Confirmation
    "h_confirmation": "2. Confirmation",
    "confirm_yes": "We confirm that we process personal data about you. This document shows which data "
                   "that is, where it comes from, what we use it for and how our scoring model used it in "
                   "decisions about you.",
    "confirm_no": "We confirm that we do not process any personal data about you, apart from the details "
                  "needed to handle this request.",
    # 3. Copy of the data
    "h_data": "3. Copy of your data",
    "data_intro": "For each decision, the table lists every piece of data the scoring model used, with its "
                  "value, where we obtained it and when. Below it you find the data we derived from it.",
    "data_none": "We have not used any of your data in an automated decision.",
    "decision_heading": "Decision of {date}",
    "decision_id": "Decision ID",
    "purpose": "Purpose",
    "inputs_caption": "Data used for this decision",
    "col_data": "Data",
    "col_value": "Value",
    "col_source": "Source",
    "col_collected": "Collected on",
    "address_marker": "address data",
    "h_derived": "Derived data",
    "score": "Score",
    "score_kind": "Type of score",
    "cut_off": "Cut-off",
    "outcome": "Outcome",
    "machine_readable": "A complete machine-readable copy of this data is attached to this PDF as the file "
                        "disclosure.json (JSON format, see Annex A). Most PDF viewers show it in their "
                        "attachments panel.",
    # 4. Art. 15(1)(a)-(g)
    "h_processing": "4. Purposes, recipients and your rights (Art. 15(1)(a)–(g) GDPR)",
    "h_purposes": "Purposes of the processing",
    "h_legal_basis": "Legal basis",
    "h_categories": "Categories of personal data",
    "categories_none": "None: we have not used any data about you in an automated decision.",
    "h_recipients": "Recipients",
    "h_transfers": "Transfers to third countries (Art. 15(2) GDPR)",
    "h_retention": "How long we keep your data",
    "h_sources": "Where your data comes from",
    "h_rights": "Your rights",
    "rights_intro": "You have the following rights regarding your personal data:",
    "right_rectification": "Rectification (Art. 16 GDPR): if data about you is wrong or incomplete, you "
                           "can ask us to correct or complete it.",
    "right_erasure": "Erasure (Art. 17 GDPR): you can ask us to delete your data, for example when we no "
                     "longer need it for the purposes listed above. Data that the law requires us to keep "
                     "may be retained.",
    "right_restriction": "Restriction of processing (Art. 18 GDPR): you can ask us only to store your data "
                         "and not to use it otherwise, for example while we check whether it is correct.",
    "right_objection": "Objection (Art. 21 GDPR): where we process your data on the basis of legitimate "
                       "interests, you can object on grounds relating to your particular situation. We "
                       "then stop, unless we can show compelling legitimate grounds that override your "
                       "interests or we need the data to establish, exercise or defend legal claims.",
    "rights_contact": "To exercise these rights, contact us at the address on the cover or our data "
                      "protection officer: {dpo}.",
    "h_complaint": "Right to lodge a complaint",
    "complaint_text": "You have the right to lodge a complaint with a data protection supervisory "
                      "authority (Art. 77 GDPR), in particular in the EU member state where you live or "
                      "work or where you believe the infringement took place. The authority responsible "
                      "for us is:",
    # 5. Automated decision-making
    "h_automated": "5. Automated decision-making (Art. 15(1)(h) and Art. 22 GDPR)",
    "art22_intro": "Under Art. 22 GDPR you have the right not to be subject to a decision based solely on "
                   "automated processing, including profiling, that has legal effects on you or affects "
                   "you in a similarly significant way. Such a decision is only allowed if it is necessary "
                   "for entering into or performing a contract with you, if it is authorised by law, or if "
                   "you have given your explicit consent (Art. 22(2) GDPR). Calculating a credit score can "
                   "itself be such a decision when the score plays a decisive role in whether a contract "
                   "is concluded (Court of Justice of the EU, case C-634/21).",
    "no_decision": "No automated decision was made about you. We have not used a scoring model to decide "
                   "about you.",
    "solely_automated_yes": "This decision was made solely by automated means, without a person assessing "
                            "it (Art. 22(1) GDPR).",
    "solely_automated_no": "This decision was not made solely by automated means: a member of our staff "
                           "reviewed it.",
    "art22_ground": "Ground under Art. 22(2) GDPR",
    "legal_basis": "Legal basis",
    "recipients": "Recipients of the result",
    "h_art22_ground": "Our ground for automated decisions (Art. 22(2) GDPR)",
    "art22_grounds": {
        "a": "Art. 22(2)(a) GDPR: the decision is necessary for entering into, or performing, a "
             "contract between you and us.",
        "b": "Art. 22(2)(b) GDPR: the decision is authorised by Union or Member State law to which we "
             "are subject and which lays down suitable measures to safeguard your rights and freedoms "
             "and legitimate interests.",
        "c": "Art. 22(2)(c) GDPR: the decision is based on your explicit consent.",
    },
    # where a decision's legal basis, Art. 22(2) ground and recipients come from
    "origin_decision": "Source: the record of this decision.",
    "origin_decision_as": "Source: the record of this decision, where it reads “{recorded}”.",
    "origin_profile": "Source: our general information on this processing (see section 4), as the "
                      "record of this decision has no entry of its own.",
    "reviewer": "Reviewed by",
    "review_action": "Result of the review",
    "review_at": "Reviewed on",
    "h_model": "The scoring model",
    "model_name": "Model",
    "model_version": "Version",
    "model_registered": "Version registered on",
    "model_type": "Model type",
    "model_digest": "Fingerprint of the model package",
    "h_logic": "How the model works",
    "logic_coefficients": "The model multiplies each input by a fixed coefficient and adds up the results "
                          "together with a constant term (intercept). A positive coefficient means that a "
                          "higher value raises the score, a negative one that it lowers the score. The "
                          "size of a coefficient depends on the unit of its input, so the coefficients of "
                          "different inputs cannot be compared directly.",
    "logic_logistic": "The sum is then converted into a probability between 0 and 1.",
    "logic_importances": "The model consists of many decision rules learned from past data. The importance "
                         "of an input shows how much the model relies on it overall: the larger the "
                         "number, the greater its influence. Importances do not show a direction; how your "
                         "own values moved your score is shown further below.",
    "logic_none": "This type of model has no weights that could be listed. How each of your values moved "
                  "your score is shown further below.",
    "col_feature": "Input",
    "col_coefficient": "Coefficient",
    "col_importance": "Importance",
    "intercept": "Constant term (intercept)",
    "h_training": "Training parameters",
    "training_intro": "The settings with which the model was trained:",
    "col_parameter": "Parameter",
    "col_setting": "Setting",
    "training_none": "No training parameters were recorded for this model.",
    "h_effects": "How your data moved the score",
    "method_linear": "Each effect is exact: it is the input's coefficient multiplied by the difference "
                     "between your value and the average value in the training data. Together with the "
                     "base value of {base}, the effects add up exactly to the model's result, measured in "
                     "{scale}.",
    "method_substitution": "Each effect is the change in the score when your value is replaced by the "
                           "average value in the training data while everything else stays the same. These "
                           "effects are approximations and need not add up exactly to the score.",
    "method_tree_shap": "Each effect is exact: it is the input's Shapley value, its average "
                        "contribution to the model's result over every order in which the inputs "
                        "can be considered, computed exactly from the model's decision trees. "
                        "Together with the base value of {base}, the effects add up exactly to "
                        "the model's result, measured in {scale}.",
    "method_other": "The effects were calculated with the method “{method}”.",
    "scales": {
        "log-odds": "log-odds (the logarithm of the odds, which the model then converts into a probability)",
        "score": "score points",
        "probability": "probability",
    },
    "score_kinds": {
        "probability": "Probability between 0 and 1",
        "score": "Score points",
    },
    "effects_none": "The effect of your individual values was not recorded for this decision.",
    "col_your_value": "Your value",
    "col_effect": "Effect on the score",
    "col_direction": "Direction",
    "directions": {
        "raised": "raised the score",
        "lowered": "lowered the score",
        "none": "no effect",
    },
    "chart_title": "Effect of each of your values on the score",
    "chart_desc": "Bar chart. Bars to the right of the zero line raised the score, bars to the left "
                  "lowered it; the longer the bar, the larger the effect.",
    "h_result": "Your score and the result",
    "result_text": "Your score was {score}. The cut-off is {cut_off}. Outcome: {outcome}.",
    "h_counterfactual": "What would have changed the result",
    "counterfactual": "Had {label} been {to} instead of {from}, the score would have been {score} and the "
                      "outcome {outcome}.",
    "counterfactual_verified": "We checked this by running the model again with the changed value.",
    "counterfactual_unverified": "This is an estimate: the model was not run again with the changed value.",
    "counterfactual_none": "We cannot name a single change to your data that would have changed the result.",
    "h_consequences": "Significance and envisaged consequences",
    "h_human": "Human review and how to contest the decision",
    "contest_text": "You have the right to obtain human intervention on our part, to express your point of "
                    "view and to contest the decision (Art. 22(3) GDPR). To do so, write to us or to our "
                    "data protection officer, quote the request ID on the cover and the date of the "
                    "decision, and explain why you see the decision differently. A member of our staff "
                    "will then reassess the decision, taking your comments into account, and can change "
                    "it. We will tell you the result.",
    "h_ai_act": "Role of the AI system (Art. 86 EU AI Act)",
    "ai_act_text": "The scoring model is an AI system used to assess creditworthiness; the EU AI Act "
                   "classifies such systems as high-risk (Annex III, point 5(b)). Under Art. 86 of the AI "
                   "Act you have the right to a clear and meaningful explanation of the role the AI system "
                   "played in the decision and of the main elements of the decision taken. This section "
                   "provides that explanation.",
    "ai_role_solely": "In this decision, the model's result determined the outcome without a person "
                      "assessing it.",
    "ai_role_reviewed": "In this decision, a member of our staff reviewed the model's result and took the "
                        "final decision.",
    "h_address": "Use of address data (§ 31 BDSG)",
    "address_text": "Address data was used in calculating this score. Under § 31 of the German Federal "
                    "Data Protection Act (BDSG), a score may not be based on address data alone, and you "
                    "must be told before the calculation that address data will be used; this notice is "
                    "documented. The address data used is marked in the table in section 3.",
    # 6. Withheld material
    "h_withheld": "6. Information withheld",
    "withheld_intro": "We have not included the following information, because disclosing it would affect "
                      "the rights of other people or our trade secrets (Art. 15(4) GDPR). We do not simply "
                      "refuse it: on request, we provide it in full to the competent supervisory authority "
                      "or a court, which can weigh your interests against ours.",
    "withheld_none": "We have not withheld any information.",
    "col_what": "What was withheld",
    "col_why": "Why",
    # Annexes
    "h_annex_json": "Annex A: Machine-readable copy (disclosure.json)",
    "annex_json_text": "The file disclosure.json is attached to this PDF. It contains the content of this "
                       "document in JSON format, serialised according to RFC 8785 so that the same content "
                       "always gives the same bytes. Its SHA-256 value is:",
    "h_annex_checkpoint": "Annex B: Signed checkpoint of the audit trail",
    "annex_checkpoint_text": "The following signed note (C2SP checkpoint format, Ed25519 signature) "
                             "records the state of our audit trail when this document was created. Anyone "
                             "holding our public key can verify it without access to our systems.",
    "verifier_key": "Our public key (note verifier):",
    "attachment_description": "Content of this disclosure, canonical JSON (RFC 8785)",
    "supervisory_authority": "Supervisory authority",
    "yes": "yes",
    "no": "no",
    "outcomes": {
        "approved": "approved",
        "accepted": "accepted",
        "declined": "declined",
        "rejected": "rejected",
        "referred": "referred for manual review",
    },
}

DE = {
    "doc_title": "Auskunft über Ihre personenbezogenen Daten (Art. 15 DSGVO)",
    "doc_subject": "Welche personenbezogenen Daten wir über Sie verarbeiten und wie unser Scoring-Modell "
                   "über Sie entschieden hat",
    "page": "Seite",
    "of": "von",
    # 1. Deckblatt
    "h_request": "1. Ihr Auskunftsersuchen",
    "controller": "Verantwortlicher",
    "dpo": "Datenschutzbeauftragter",
    "request_id": "Vorgangsnummer",
    "subject_name": "Name",
    "subject_ref": "Pseudonyme Kennung",
    "received_on": "Ersuchen eingegangen am",
    "due_on": "Antwort fällig bis",
    "extended_until": "Frist verlängert bis",
    "extension_reason": "Grund der Verlängerung",
    "identity_verification": "So wurde Ihre Identität geprüft",
    "document_version": "Fassung dieses Dokuments",
    "generated_at": "Dokument erstellt am",
    "deadline_note": "Wir müssen Ihr Ersuchen innerhalb eines Monats nach Eingang beantworten (Art. 12 "
                     "Abs. 3 DSGVO). Bei komplexen Ersuchen können wir die Frist um höchstens zwei weitere "
                     "Monate verlängern; das müssen wir Ihnen innerhalb des ersten Monats mitteilen und "
                     "begründen.",
    "h_integrity": "Unversehrtheit dieses Dokuments",
    "content_sha256": "SHA-256 der Datei disclosure.json",
    "audit_seq": "Eintrag im Prüfprotokoll (laufende Nummer)",
    "audit_event_hash": "Hashwert des Protokolleintrags",
    "checkpoint_tree_size": "Signierter Prüfpunkt: Anzahl der Einträge",
    "checkpoint_root_hash": "Signierter Prüfpunkt: Wurzel-Hashwert",
    "checkpoint_chain_hash": "Signierter Prüfpunkt: Ketten-Hashwert",
    "checkpoint_key": "Signaturschlüssel",
    "checkpoint_signed_at": "Prüfpunkt signiert am",
    "integrity_text": "Der oben genannte SHA-256-Wert ist der digitale Fingerabdruck der an dieses PDF "
                      "angehängten Datei disclosure.json, die alles, was dieses Dokument über Sie aussagt, "
                      "in maschinenlesbarer Form enthält; würde auch nur ein Zeichen dieser Datei "
                      "verändert, stimmte der Wert nicht mehr überein. Der Wert ist in dem genannten "
                      "Eintrag unseres Prüfprotokolls festgehalten, und dieser Eintrag ist durch den "
                      "signierten Prüfpunkt abgesichert, der in Anhang B vollständig wiedergegeben ist.",
    # 2. Bestätigung
    "h_confirmation": "2. Bestätigung",
    "confirm_yes": "Wir bestätigen, dass wir personenbezogene Daten über Sie verarbeiten. Dieses Dokument "
                   "zeigt, um welche Daten es sich handelt, woher sie stammen, wofür wir sie verwenden und "
                   "wie unser Scoring-Modell sie bei Entscheidungen über Sie verwendet hat.",
    "confirm_no": "Wir bestätigen, dass wir keine personenbezogenen Daten über Sie verarbeiten, abgesehen "
                  "von den Angaben, die wir zur Bearbeitung dieses Ersuchens benötigen.",
    # 3. Kopie der Daten
    "h_data": "3. Kopie Ihrer Daten",
    "data_intro": "Für jede Entscheidung führt die Tabelle alle Daten auf, die das Scoring-Modell "
                  "verwendet hat, mit ihrem Wert, ihrer Herkunft und dem Tag der Erhebung. Darunter finden "
                  "Sie die Daten, die wir daraus abgeleitet haben.",
    "data_none": "Wir haben keine Ihrer Daten für eine automatisierte Entscheidung verwendet.",
    "decision_heading": "Entscheidung vom {date}",
    "decision_id": "Kennung der Entscheidung",
    "purpose": "Zweck",
    "inputs_caption": "Für diese Entscheidung verwendete Daten",
    "col_data": "Angabe",
    "col_value": "Wert",
    "col_source": "Herkunft",
    "col_collected": "Erhoben am",
    "address_marker": "Anschriftendaten",
    "h_derived": "Abgeleitete Daten",
    "score": "Score",
    "score_kind": "Art des Scores",
    "cut_off": "Schwellenwert",
    "outcome": "Ergebnis",
    "machine_readable": "Eine vollständige maschinenlesbare Kopie dieser Daten ist diesem PDF als Datei "
                        "disclosure.json beigefügt (JSON-Format, siehe Anhang A). Die meisten "
                        "PDF-Programme zeigen sie in der Ansicht „Anhänge“ an.",
    # 4. Art. 15 Abs. 1 lit. a–g
    "h_processing": "4. Zwecke, Empfänger und Ihre Rechte (Art. 15 Abs. 1 lit. a–g DSGVO)",
    "h_purposes": "Zwecke der Verarbeitung",
    "h_legal_basis": "Rechtsgrundlage",
    "h_categories": "Kategorien personenbezogener Daten",
    "categories_none": "Keine: Wir haben keine Daten über Sie für eine automatisierte Entscheidung "
                       "verwendet.",
    "h_recipients": "Empfänger",
    "h_transfers": "Übermittlung in Drittländer (Art. 15 Abs. 2 DSGVO)",
    "h_retention": "Wie lange wir Ihre Daten speichern",
    "h_sources": "Woher Ihre Daten stammen",
    "h_rights": "Ihre Rechte",
    "rights_intro": "Ihnen stehen hinsichtlich Ihrer personenbezogenen Daten folgende Rechte zu:",
    "right_rectification": "Berichtigung (Art. 16 DSGVO): Sind Daten über Sie falsch oder unvollständig, "
                           "können Sie verlangen, dass wir sie berichtigen oder vervollständigen.",
    "right_erasure": "Löschung (Art. 17 DSGVO): Sie können verlangen, dass wir Ihre Daten löschen, etwa "
                     "wenn wir sie für die oben genannten Zwecke nicht mehr benötigen. Daten, die wir "
                     "aufgrund gesetzlicher Pflichten aufbewahren müssen, dürfen wir behalten.",
    "right_restriction": "Einschränkung der Verarbeitung (Art. 18 DSGVO): Sie können verlangen, dass wir "
                         "Ihre Daten nur noch speichern und nicht anderweitig verwenden, etwa solange wir "
                         "prüfen, ob sie richtig sind.",
    "right_objection": "Widerspruch (Art. 21 DSGVO): Verarbeiten wir Ihre Daten aufgrund berechtigter "
                       "Interessen, können Sie aus Gründen, die sich aus Ihrer besonderen Situation "
                       "ergeben, widersprechen. Wir verarbeiten sie dann nicht mehr, es sei denn, wir "
                       "können zwingende schutzwürdige Gründe nachweisen, die Ihre Interessen überwiegen, "
                       "oder wir benötigen die Daten, um Rechtsansprüche geltend zu machen, auszuüben oder "
                       "zu verteidigen.",
    "rights_contact": "Um diese Rechte auszuüben, wenden Sie sich an uns unter der Anschrift auf dem "
                      "Deckblatt oder an unseren Datenschutzbeauftragten: {dpo}.",
    "h_complaint": "Beschwerderecht",
    "complaint_text": "Sie haben das Recht, sich bei einer Datenschutz-Aufsichtsbehörde zu beschweren "
                      "(Art. 77 DSGVO), insbesondere in dem EU-Mitgliedstaat, in dem Sie wohnen oder "
                      "arbeiten oder in dem der mutmaßliche Verstoß stattgefunden hat. Für uns zuständig "
                      "ist:",
    # 5. Automatisierte Entscheidungen
    "h_automated": "5. Automatisierte Entscheidungen (Art. 15 Abs. 1 lit. h und Art. 22 DSGVO)",
    "art22_intro": "Nach Art. 22 DSGVO haben Sie das Recht, keiner ausschließlich auf einer "
                   "automatisierten Verarbeitung – einschließlich Profiling – beruhenden Entscheidung "
                   "unterworfen zu werden, die Ihnen gegenüber rechtliche Wirkung entfaltet oder Sie in "
                   "ähnlicher Weise erheblich beeinträchtigt. Eine solche Entscheidung ist nur zulässig, "
                   "wenn sie für den Abschluss oder die Erfüllung eines Vertrags mit Ihnen erforderlich "
                   "ist, wenn sie gesetzlich zugelassen ist oder wenn Sie ausdrücklich eingewilligt haben "
                   "(Art. 22 Abs. 2 DSGVO). Schon die Berechnung eines Kredit-Scores kann eine solche "
                   "Entscheidung sein, wenn der Score maßgeblich dafür ist, ob ein Vertrag zustande kommt "
                   "(Gerichtshof der EU, Rechtssache C-634/21).",
    "no_decision": "Über Sie wurde keine automatisierte Entscheidung getroffen. Wir haben kein "
                   "Scoring-Modell eingesetzt, um über Sie zu entscheiden.",
    "solely_automated_yes": "Diese Entscheidung wurde ausschließlich automatisiert getroffen, ohne dass "
                            "ein Mensch sie geprüft hat (Art. 22 Abs. 1 DSGVO).",
    "solely_automated_no": "Diese Entscheidung wurde nicht ausschließlich automatisiert getroffen: Eine "
                           "Mitarbeiterin oder ein Mitarbeiter hat sie geprüft.",
    "art22_ground": "Grundlage nach Art. 22 Abs. 2 DSGVO",
    "legal_basis": "Rechtsgrundlage",
    "recipients": "Empfänger des Ergebnisses",
    "h_art22_ground": "Unsere Grundlage für automatisierte Entscheidungen (Art. 22 Abs. 2 DSGVO)",
    "art22_grounds": {
        "a": "Art. 22 Abs. 2 lit. a DSGVO: Die Entscheidung ist für den Abschluss oder die Erfüllung "
             "eines Vertrags zwischen Ihnen und uns erforderlich.",
        "b": "Art. 22 Abs. 2 lit. b DSGVO: Die Entscheidung ist aufgrund von Rechtsvorschriften der Union "
             "oder der Mitgliedstaaten zulässig, denen wir unterliegen und die angemessene Maßnahmen zur "
             "Wahrung Ihrer Rechte und Freiheiten sowie Ihrer berechtigten Interessen enthalten.",
        "c": "Art. 22 Abs. 2 lit. c DSGVO: Die Entscheidung beruht auf Ihrer ausdrücklichen Einwilligung.",
    },
    # Herkunft von Rechtsgrundlage, Grundlage nach Art. 22 Abs. 2 und Empfängern einer Entscheidung
    "origin_decision": "Quelle: der Datensatz dieser Entscheidung.",
    "origin_decision_as": "Quelle: der Datensatz dieser Entscheidung, dort erfasst als „{recorded}“.",
    "origin_profile": "Quelle: unsere allgemeinen Angaben zu dieser Verarbeitung (siehe Abschnitt 4), "
                      "da der Datensatz dieser Entscheidung keine eigene Angabe enthält.",
    "reviewer": "Geprüft von",
    "review_action": "Ergebnis der Prüfung",
    "review_at": "Geprüft am",
    "h_model": "Das Scoring-Modell",
    "model_name": "Modell",
    "model_version": "Version",
    "model_registered": "Version registriert am",
    "model_type": "Modelltyp",
    "model_digest": "Fingerabdruck des Modellpakets",
    "h_logic": "Wie das Modell funktioniert",
    "logic_coefficients": "Das Modell multipliziert jede Eingabe mit einem festen Koeffizienten und "
                          "addiert die Ergebnisse zusammen mit einem konstanten Term (Achsenabschnitt). "
                          "Ein positiver Koeffizient bedeutet, dass ein höherer Wert den Score erhöht, ein "
                          "negativer, dass er ihn senkt. Die Größe eines Koeffizienten hängt von der "
                          "Einheit der Eingabe ab; die Koeffizienten verschiedener Eingaben lassen sich "
                          "daher nicht direkt vergleichen.",
    "logic_logistic": "Die Summe wird anschließend in eine Wahrscheinlichkeit zwischen 0 und 1 umgerechnet.",
    "logic_importances": "Das Modell besteht aus vielen Entscheidungsregeln, die aus früheren Daten "
                         "gelernt wurden. Die Wichtigkeit einer Eingabe zeigt, wie stark sich das Modell "
                         "insgesamt auf sie stützt: Je größer die Zahl, desto größer ihr Einfluss. "
                         "Wichtigkeiten geben keine Richtung an; wie Ihre eigenen Werte Ihren Score "
                         "beeinflusst haben, sehen Sie weiter unten.",
    "logic_none": "Für diesen Modelltyp lassen sich keine Gewichte angeben. Wie Ihre einzelnen Werte Ihren "
                  "Score beeinflusst haben, sehen Sie weiter unten.",
    "col_feature": "Eingabe",
    "col_coefficient": "Koeffizient",
    "col_importance": "Wichtigkeit",
    "intercept": "Konstanter Term (Achsenabschnitt)",
    "h_training": "Trainingsparameter",
    "training_intro": "Die Einstellungen, mit denen das Modell trainiert wurde:",
    "col_parameter": "Parameter",
    "col_setting": "Einstellung",
    "training_none": "Für dieses Modell sind keine Trainingsparameter verzeichnet.",
    "h_effects": "Wie Ihre Daten den Score beeinflusst haben",
    "method_linear": "Jeder Einfluss ist exakt berechnet: Er ist der Koeffizient der Eingabe, "
                     "multipliziert mit der Differenz zwischen Ihrem Wert und dem Durchschnittswert der "
                     "Trainingsdaten. Zusammen mit dem Ausgangswert von {base} ergeben die Einflüsse genau "
                     "das Ergebnis des Modells, gemessen in {scale}.",
    "method_substitution": "Jeder Einfluss ist die Änderung des Scores, wenn Ihr Wert durch den "
                           "Durchschnittswert der Trainingsdaten ersetzt wird und alles andere gleich "
                           "bleibt. Diese Einflüsse sind Näherungswerte und ergeben zusammen nicht "
                           "unbedingt genau den Score.",
    "method_tree_shap": "Jeder Einfluss ist exakt berechnet: Er ist der Shapley-Wert der Eingabe, "
                        "ihr durchschnittlicher Beitrag zum Ergebnis des Modells über alle "
                        "Reihenfolgen, in denen die Eingaben betrachtet werden können, exakt aus "
                        "den Entscheidungsbäumen des Modells berechnet. Zusammen mit dem "
                        "Ausgangswert von {base} ergeben die Einflüsse genau das Ergebnis des "
                        "Modells, gemessen in {scale}.",
    "method_other": "Die Einflüsse wurden mit der Methode „{method}“ berechnet.",
    "scales": {
        "log-odds": "Log-Odds (dem Logarithmus der Chance, den das Modell anschließend in eine "
                    "Wahrscheinlichkeit umrechnet)",
        "score": "Score-Punkten",
        "probability": "Wahrscheinlichkeit",
    },
    "score_kinds": {
        "probability": "Wahrscheinlichkeit zwischen 0 und 1",
        "score": "Punktwert",
    },
    "effects_none": "Der Einfluss Ihrer einzelnen Werte wurde für diese Entscheidung nicht erfasst.",
    "col_your_value": "Ihr Wert",
    "col_effect": "Einfluss auf den Score",
    "col_direction": "Richtung",
    "directions": {
        "raised": "hat den Score erhöht",
        "lowered": "hat den Score gesenkt",
        "none": "ohne Einfluss",
    },
    "chart_title": "Einfluss Ihrer einzelnen Werte auf den Score",
    "chart_desc": "Balkendiagramm. Balken rechts der Nulllinie haben den Score erhöht, Balken links davon "
                  "haben ihn gesenkt; je länger der Balken, desto größer der Einfluss.",
    "h_result": "Ihr Score und das Ergebnis",
    "result_text": "Ihr Score betrug {score}. Der Schwellenwert liegt bei {cut_off}. Ergebnis: {outcome}.",
    "h_counterfactual": "Was das Ergebnis geändert hätte",
    "counterfactual": "Wäre der Wert „{label}“ {to} statt {from} gewesen, hätte der Score {score} betragen "
                      "und das Ergebnis hätte „{outcome}“ gelautet.",
    "counterfactual_verified": "Wir haben das überprüft, indem wir das Modell mit dem geänderten Wert "
                               "erneut berechnet haben.",
    "counterfactual_unverified": "Dies ist eine Schätzung: Das Modell wurde mit dem geänderten Wert nicht "
                                 "erneut berechnet.",
    "counterfactual_none": "Für diese Entscheidung können wir keine einzelne Änderung Ihrer Daten nennen, "
                           "die das Ergebnis geändert hätte.",
    "h_consequences": "Tragweite und angestrebte Auswirkungen",
    "h_human": "Menschliche Prüfung und Anfechtung der Entscheidung",
    "contest_text": "Sie haben das Recht, das Eingreifen einer Person auf unserer Seite zu erwirken, Ihren "
                    "eigenen Standpunkt darzulegen und die Entscheidung anzufechten (Art. 22 Abs. 3 "
                    "DSGVO). Schreiben Sie dazu an uns oder an unseren Datenschutzbeauftragten, nennen Sie "
                    "die Vorgangsnummer auf dem Deckblatt und das Datum der Entscheidung und erläutern "
                    "Sie, warum Sie die Entscheidung anders sehen. Eine Mitarbeiterin oder ein Mitarbeiter "
                    "prüft die Entscheidung dann unter Berücksichtigung Ihrer Angaben neu und kann sie "
                    "ändern. Über das Ergebnis informieren wir Sie.",
    "h_ai_act": "Rolle des KI-Systems (Art. 86 KI-Verordnung)",
    "ai_act_text": "Das Scoring-Modell ist ein KI-System zur Bewertung der Kreditwürdigkeit; solche "
                   "Systeme stuft die KI-Verordnung der EU als Hochrisiko-KI-Systeme ein (Anhang III Nr. 5 "
                   "Buchstabe b). Nach Art. 86 KI-Verordnung haben Sie das Recht auf eine klare und "
                   "aussagekräftige Erläuterung der Rolle des KI-Systems im Entscheidungsprozess und der "
                   "wichtigsten Elemente der getroffenen Entscheidung. Diese Erläuterung finden Sie in "
                   "diesem Abschnitt.",
    "ai_role_solely": "Bei dieser Entscheidung hat das Ergebnis des Modells den Ausgang bestimmt, ohne "
                      "dass ein Mensch es geprüft hat.",
    "ai_role_reviewed": "Bei dieser Entscheidung hat eine Mitarbeiterin oder ein Mitarbeiter das Ergebnis "
                        "des Modells geprüft und die abschließende Entscheidung getroffen.",
    "h_address": "Nutzung von Anschriftendaten (§ 31 BDSG)",
    "address_text": "Für die Berechnung dieses Scores wurden Anschriftendaten verwendet. Nach § 31 des "
                    "Bundesdatenschutzgesetzes (BDSG) darf ein Score nicht ausschließlich auf "
                    "Anschriftendaten beruhen, und Sie müssen vor der Berechnung darüber unterrichtet "
                    "werden, dass Anschriftendaten genutzt werden; diese Unterrichtung wird dokumentiert. "
                    "Die verwendeten Anschriftendaten sind in der Tabelle in Abschnitt 3 gekennzeichnet.",
    # 6. Nicht offengelegte Informationen
    "h_withheld": "6. Nicht offengelegte Informationen",
    "withheld_intro": "Die folgenden Informationen haben wir nicht in diese Auskunft aufgenommen, weil "
                      "ihre Offenlegung die Rechte anderer Personen oder unsere Geschäftsgeheimnisse "
                      "beeinträchtigen würde (Art. 15 Abs. 4 DSGVO). Wir verweigern sie aber nicht "
                      "pauschal: Auf Anforderung legen wir sie der zuständigen Aufsichtsbehörde oder einem "
                      "Gericht vollständig vor; diese können Ihre Interessen gegen unsere abwägen.",
    "withheld_none": "Wir haben keine Informationen zurückgehalten.",
    "col_what": "Was nicht offengelegt wurde",
    "col_why": "Begründung",
    # Anhänge
    "h_annex_json": "Anhang A: Maschinenlesbare Kopie (disclosure.json)",
    "annex_json_text": "Die Datei disclosure.json ist diesem PDF als Anhang beigefügt. Sie enthält den "
                       "Inhalt dieses Dokuments im JSON-Format, nach RFC 8785 normiert, sodass derselbe "
                       "Inhalt immer dieselben Bytes ergibt. Ihr SHA-256-Wert lautet:",
    "h_annex_checkpoint": "Anhang B: Signierter Prüfpunkt des Prüfprotokolls",
    "annex_checkpoint_text": "Die folgende signierte Notiz (C2SP-Checkpoint-Format, Ed25519-Signatur) hält "
                             "den Stand unseres Prüfprotokolls bei Erstellung dieses Dokuments fest. Wer "
                             "unseren öffentlichen Schlüssel hat, kann sie ohne Zugriff auf unsere Systeme "
                             "prüfen.",
    "verifier_key": "Unser öffentlicher Schlüssel (Note-Verifier):",
    "attachment_description": "Inhalt dieser Auskunft, kanonisches JSON (RFC 8785)",
    "supervisory_authority": "Aufsichtsbehörde",
    "yes": "ja",
    "no": "nein",
    "outcomes": {
        "approved": "genehmigt",
        "accepted": "angenommen",
        "declined": "abgelehnt",
        "rejected": "abgelehnt",
        "referred": "zur manuellen Prüfung weitergeleitet",
    },
}

TEXTS = {"en": EN, "de": DE}
