-- Which order a Stripe PaymentIntent pays: a charge.refunded names only its intent.
-- Written when the intent's checkout session completes.
CREATE TABLE stripe_payment_intents (
    payment_intent text PRIMARY KEY,
    order_id uuid NOT NULL
);
