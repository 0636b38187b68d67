/*
 * aba_conf.pml: a Promela model of tobd's binary agreement
 * (consensus/binary_agreement.cpp): Mostéfaoui–Moumen–Raynal with the CONF
 * phase, the round outcome taken from the CONF quorum, and TERM messages.
 * tests/model/run_model.sh checks it with spin (`make model`); docs/aba.md
 * explains what it shows.
 *
 * Setting. n = 4 members, t = 1: nodes 0, 1, 2 are honest and run the protocol,
 * node 3 (X) is Byzantine. Rounds r = 0 .. R-1 (R = 3 unless -DR=k); a node that
 * ends round R-1 without deciding stops there. Every honest node has an input,
 * which reaches it at any moment, or never (a node that left round 0 first
 * ignores it, as the implementation does).
 *
 * The network. Asynchronous: a message arrives after any delay or never, so what
 * a node has received at some moment can be any part of what was sent to it by
 * then. The model keeps no messages in flight; every step of a node may use any
 * set of the messages sent to it so far:
 *   - an honest peer k offers in round r what k really sent in round r (records
 *     sbv, saux, sconf) and, once k decided v, the stand-in votes of its TERM(v):
 *     BVAL(v), AUX(v), CONF({v});
 *   - X offers every BVAL value, and any AUX value and any CONF set, to each
 *     receiver separately: anything a receiver would accept from it.
 * A receiver counts one AUX and one CONF per sender (the real one or the TERM
 * stand-in), a flag per BVAL value, and its own messages at once. Each threshold
 * rule becomes a step that is enabled when enough offered messages exist:
 *   relay BVAL(b)       when RELAY senders offer BVAL(b),
 *   b into bin_values   when ACCEPT senders offer BVAL(b) (AUX(b) if first),
 *   end the AUX wait    with vals = the values of any AUXQ or more senders' AUX
 *                       (own included) whose values lie in bin_values,
 *   end the CONF wait   with any CONFQ or more senders' CONF sets (own included)
 *                       inside bin_values; the decision set is {b} if CONFQ of
 *                       them are {b}, else their union,
 *   decide v            on TERMT TERM(v) (the honest deciders of v, and X).
 * Why this is sound for safety: in a run of the implementation, each such step
 * happens when the messages the node counted meet the threshold, and what it
 * counted was sent, so it is on offer: every run of the implementation (up to R
 * rounds) is a run of the model. The model also has runs the implementation has
 * not (a node acting on a larger set than the first one that met a threshold, or
 * relaying later than it would). Extra runs can add counterexamples but cannot
 * hide one, so "errors: 0" carries over to the implementation; a counterexample
 * has to be checked against it (the ones shown in docs/aba.md were replayed in
 * tests/unit/binary_agreement_test.cpp).
 *
 * The coin. The coin of round r is drawn, 0 or 1, by the step in which the first
 * honest node ends its CONF wait of round r: its share may leave then, and with
 * X's share that makes the t+1 = 2 that reveal it. From then on every step of
 * the search knows it (the adversary sees it); a node uses it only after its own
 * CONF wait. Drawing it later would only tell the adversary less.
 *
 * Checked, by assertions at every decision:
 *   agreement: no two honest nodes decide different values;
 *   validity:  a decided value is some honest node's input (so if all honest
 *              inputs are v, nobody decides the other value).
 *
 * Not covered: other n and t; rounds beyond R; termination and the chance of
 * deciding (the coin is adversarial here, not random; liveness is tested in
 * tests/unit/binary_agreement_test.cpp); the cryptography (nobody forges an
 * honest message or knows a coin before an honest share left); crash and restore
 * from the sign-log; the max_rounds_ahead window.
 *
 * Reductions (each keeps every reachable decision):
 *   - inputs up to symmetry: the honest nodes are interchangeable and so are the
 *     two values (the coin is drawn both ways), so inputs (0,0,0) and (0,0,1)
 *     stand for all eight (-DALL_INPUTS checks all eight);
 *   - what nobody can read any more is reset to one value: a decided node's
 *     round state, records of rounds no running node is in, AUX records once
 *     every running node of that round ended its AUX wait (CONF records: CONF
 *     wait), bin_values after the CONF wait (nothing reads it then);
 *   - with RELAY + 1 >= ACCEPT (the real thresholds) a relay of b adds b to
 *     bin_values in the same step: the own BVAL(b) completes ACCEPT counted
 *     BVAL(b), as it does in the implementation.
 *
 * Switches (spin -DNAME[=k] -a aba_conf.pml). Each weakens one rule, to show
 * what the rule protects; run_model.sh uses ACCEPT=1 for its counterexample
 * and lists what the others give (--variants):
 *   RELAY=k   relay BVAL(b) after k BVAL(b)         (default t+1 = 2)
 *   ACCEPT=k  b into bin_values after k BVAL(b)     (default 2t+1 = 3)
 *   AUXQ=k    the AUX wait ends with k AUX          (default n-t = 3)
 *   CONFQ=k   the CONF wait ends with k CONF, and k CONF({b}) give {b} (n-t)
 *   TERMT=k   decide on k TERM(v)                   (default t+1 = 2)
 *   OWN_VALS  the outcome from the own AUX-phase vals (hbbft's rule, tobd's
 *             previous one), not from the CONF quorum
 *   AUX_EVERY AUX for every value entering bin_values, each counted (not
 *             "first value only")
 *   CONF_BIN  CONF(bin_values) instead of CONF(vals)
 *   NO_SUBSET CONF sets count even when not inside bin_values
 *   WITNESS   not a weakening: asserts that nobody decides in the last round,
 *             so that spin shows a run that does (the model is not vacuous)
 */

#define N 4
#define T 1
#define X 3 /* the Byzantine node; 0, 1, 2 are honest */

#ifndef R
#define R 3
#endif
#ifndef RELAY
#define RELAY (T + 1)
#endif
#ifndef ACCEPT
#define ACCEPT (2 * T + 1)
#endif
#ifndef AUXQ
#define AUXQ (N - T)
#endif
#ifndef CONFQ
#define CONFQ (N - T)
#endif
#ifndef TERMT
#define TERMT (T + 1)
#endif

/* Sets of values are masks as on the wire: bit 0 = value 0, bit 1 = value 1. */
#define BIT(b) (1 << (b))
#define SR(k, r) ((k) * R + (r)) /* sender k, round r */

/* ---- each honest node ------------------------------------------------------ */
byte inp[3];   /* its input */
bit pend[3];   /* the input has not reached the node yet */
byte rnd[3];   /* current round; R = stopped at the bound */
byte est[3];   /* estimate 0/1; 2 = none (round 0 before the input) */
byte dec[3];   /* decided value (mask); 0 = undecided */
byte bin[3];   /* bin_values of the current round */
byte vals[3];  /* the AUX-phase set; 0 = the AUX wait has not ended */
bit cdone[3];  /* the CONF wait of the current round ended */
byte cvals[3]; /* the decision set, fixed when the CONF wait ended */

/* ---- what each honest node sent in each round ------------------------------- */
byte sbv[3 * R];   /* BVAL values (mask) */
byte saux[3 * R];  /* AUX value(s) (mask) */
byte sconf[3 * R]; /* CONF set; 0 = none */
byte sterm[3];     /* TERM value (mask); 0 = none */

byte coin[R]; /* the coin of round r (mask); 0 = not drawn yet */
byte inputs;  /* mask of the honest inputs */
byte decided; /* mask of the honest decisions */

/* Scratch, used inside d_step blocks only (not part of the state). */
hidden byte ti, tr, tq, ta, tb, tc, tcnt, tall, ts0, ts1, tach, tpk, tpo, tdv;

#define LIVE(j) (dec[j] == 0 && rnd[j] < R)
#define POP(m) (((m) & 1) + (((m) >> 1) & 1))

/* Senders offering BVAL(b) to j in j's round: honest records and TERM stand-ins,
   plus X. */
#define OFFERS_BV(k, r, b) (((sbv[SR(k, r)] | sterm[k]) & BIT(b)) != 0)
#define BV_COUNT(j, b) \
    (OFFERS_BV(0, rnd[j], b) + OFFERS_BV(1, rnd[j], b) + OFFERS_BV(2, rnd[j], b) + 1)

/* ---- the AUX wait ----------------------------------------------------------- */

/* Options of sender tpk as seen by receiver j in round tr: a mask of the AUX
   values it offers inside bin_values (X: any value in bin_values). */
inline aux_offer(j) {
    if
    :: tpk == X -> tpo = bin[j]
    :: else -> tpo = (saux[SR(tpk, tr)] | sterm[tpk]) & bin[j]
    fi
}

/* tach := the masks V (bit V-1) that can be vals: some choice of AUX, one per
   sender (two values per sender with AUX_EVERY), own AUX included, at least AUXQ
   counted, values exactly V. Enumerates a choice c in 0..3 for each of the three
   other senders (a subset of its offers; at most one value without AUX_EVERY). */
inline aux_achievable(j) {
    tr = rnd[j];
    tach = 0;
    ta = 0;
    do
    :: ta < 64 ->
        tcnt = POP(saux[SR(j, tr)] & bin[j]);
        tall = saux[SR(j, tr)] & bin[j];
        tq = 1; /* choice still valid */
        ti = 0;
        do
        :: ti < 3 ->
            tpk = (j + 1 + ti) % N; /* the other three senders */
            tc = (ta >> (2 * ti)) & 3;
            aux_offer(j);
#ifdef AUX_EVERY
            if
            :: (tc & ~tpo) != 0 -> tq = 0
            :: else -> skip
            fi;
#else
            if
            :: (tc & ~tpo) != 0 || tc == 3 -> tq = 0
            :: else -> skip
            fi;
#endif
            tcnt = tcnt + POP(tc);
            tall = tall | tc;
            ti++
        :: else -> break
        od;
        if
        :: tq && tcnt >= AUXQ && tall != 0 -> tach = tach | BIT(tall - 1)
        :: else -> skip
        fi;
        ta++
    :: else -> break
    od
}

/* ---- the CONF wait ---------------------------------------------------------- */

#ifdef NO_SUBSET
#define IN_BIN(s, j) ((s) != 0)
#else
#define IN_BIN(s, j) ((s) != 0 && ((s) & ~bin[j]) == 0)
#endif

/* tach := the decision sets V (bit V-1) that can end j's CONF wait: own CONF plus
   a choice per other sender (none, its real CONF, its TERM stand-in; X: any set),
   every counted set inside bin_values, at least CONFQ counted. Choice c per
   sender: 0 none, 1 real, 2 stand-in (X: c is the set itself, 1..3). */
inline conf_achievable(j) {
    tr = rnd[j];
    tach = 0;
    ta = 0;
    do
    :: ta < 64 ->
        tq = 1;
        tcnt = 1; /* own CONF: vals, inside bin_values */
        tall = sconf[SR(j, tr)];
        ts0 = (sconf[SR(j, tr)] == 1);
        ts1 = (sconf[SR(j, tr)] == 2);
        if
        :: !IN_BIN(sconf[SR(j, tr)], j) -> tq = 0
        :: else -> skip
        fi;
        ti = 0;
        do
        :: ti < 3 ->
            tpk = (j + 1 + ti) % N;
            tc = (ta >> (2 * ti)) & 3;
            tpo = 0;
            if
            :: tc == 0 -> skip
            :: tpk == X -> tpo = tc
            :: tpk != X && tc == 1 -> tpo = sconf[SR(tpk, tr)]
            :: tpk != X && tc == 2 -> tpo = sterm[tpk]
            :: else -> tq = 0 /* c = 3: no such option for an honest sender */
            fi;
            if
            :: tc != 0 && IN_BIN(tpo, j) ->
                tcnt++;
                tall = tall | tpo;
                ts0 = ts0 + (tpo == 1);
                ts1 = ts1 + (tpo == 2)
            :: tc != 0 && !IN_BIN(tpo, j) -> tq = 0
            :: else -> skip
            fi;
            ti++
        :: else -> break
        od;
        if
        :: tq && tcnt >= CONFQ ->
#ifdef OWN_VALS
            tall = vals[j];
#else
            if
            :: ts0 >= CONFQ -> tall = 1
            :: ts0 < CONFQ && ts1 >= CONFQ -> tall = 2
            :: else -> skip
            fi;
#endif
            tach = tach | BIT(tall - 1)
        :: else -> skip
        fi;
        ta++
    :: else -> break
    od
}

/* ---- bookkeeping ------------------------------------------------------------ */

/* Forget the records and coins of rounds that no running node is in any more,
   so that states that differ only in such leftovers are one state. */
inline collect() {
    tq = R;
    ti = 0;
    do
    :: ti < 3 ->
        if
        :: LIVE(ti) && rnd[ti] < tq -> tq = rnd[ti]
        :: else -> skip
        fi;
        ti++
    :: else -> break
    od;
    /* AUX and CONF records of round tq once every running node in it is past
       that wait (nobody running is in an earlier round) */
    ta = 1;
    tb = 1;
    ti = 0;
    do
    :: ti < 3 ->
        if
        :: LIVE(ti) && rnd[ti] == tq && vals[ti] == 0 -> ta = 0
        :: else -> skip
        fi;
        if
        :: LIVE(ti) && rnd[ti] == tq && !cdone[ti] -> tb = 0
        :: else -> skip
        fi;
        ti++
    :: else -> break
    od;
    if
    :: tq < R && ta ->
        saux[SR(0, tq)] = 0;
        saux[SR(1, tq)] = 0;
        saux[SR(2, tq)] = 0
    :: else -> skip
    fi;
    if
    :: tq < R && tb ->
        sconf[SR(0, tq)] = 0;
        sconf[SR(1, tq)] = 0;
        sconf[SR(2, tq)] = 0
    :: else -> skip
    fi;
    tr = 0;
    do
    :: tr < tq ->
        coin[tr] = 0;
        sbv[SR(0, tr)] = 0;
        sbv[SR(1, tr)] = 0;
        sbv[SR(2, tr)] = 0;
        saux[SR(0, tr)] = 0;
        saux[SR(1, tr)] = 0;
        saux[SR(2, tr)] = 0;
        sconf[SR(0, tr)] = 0;
        sconf[SR(1, tr)] = 0;
        sconf[SR(2, tr)] = 0;
        tr++
    :: else -> break
    od
}

inline clear_round(j) {
    bin[j] = 0;
    vals[j] = 0;
    cdone[j] = 0;
    cvals[j] = 0
}

inline decide(j, v) {
    printf("MSC: node %d decides %d in round %d\n", j, (v) - 1, rnd[j]);
#ifdef WITNESS
    assert(rnd[j] < R - 1);
#endif
    assert((decided | (v)) != 3);   /* agreement */
    assert(((v) & inputs) == (v));  /* validity */
    decided = decided | (v);
    dec[j] = v;
    sterm[j] = v;
    /* the rest of a decided node's state no longer matters: one canonical value */
    pend[j] = 0;
    inp[j] = 0;
    est[j] = 0;
    rnd[j] = 0;
    clear_round(j);
    collect()
}

/* Step 6: the round outcome once the coin is known. */
inline use_coin(j) {
    tr = rnd[j];
    printf("MSC: node %d ends round %d with decision set %d, coin %d\n", j, tr, cvals[j],
           coin[tr] - 1);
    if
    :: cvals[j] == coin[tr] ->
        tdv = coin[tr];
        decide(j, tdv)
    :: else ->
        if
        :: cvals[j] == 3 -> est[j] = coin[tr] - 1
        :: else -> est[j] = cvals[j] - 1
        fi;
        rnd[j]++;
        pend[j] = 0;
        clear_round(j);
        collect();
        if
        :: rnd[j] < R ->
            sbv[SR(j, rnd[j])] = BIT(est[j]);
            printf("MSC: node %d enters round %d with est %d\n", j, rnd[j], est[j])
        :: else -> est[j] = 0 /* stopped at the bound */
        fi;
        inp[j] = 0 /* a late input is ignored from now on */
    fi
}

/* ---- the steps of honest node j -------------------------------------------- */

#define STEPS(j) \
    /* the input arrives (ignored once the node left round 0) */ \
    :: d_step { pend[j] -> \
           pend[j] = 0; \
           if :: LIVE(j) && rnd[j] == 0 && est[j] == 2 -> \
                 est[j] = inp[j]; sbv[SR(j, 0)] = sbv[SR(j, 0)] | BIT(est[j]); \
                 printf("MSC: node %d gets input %d\n", j, est[j]) \
              :: else -> skip fi; \
           inp[j] = 0 /* only the mask `inputs` keeps it */ } \
    BVAL_STEPS(j, 0) \
    BVAL_STEPS(j, 1) \
    AUX_WAIT(j, 1) \
    AUX_WAIT(j, 2) \
    AUX_WAIT(j, 3) \
    CONF_WAIT(j, 1, 0) \
    CONF_WAIT(j, 2, 0) \
    CONF_WAIT(j, 3, 0) \
    CONF_WAIT(j, 1, 1) \
    CONF_WAIT(j, 2, 1) \
    CONF_WAIT(j, 3, 1) \
    /* the coin is known (after the own CONF wait): end the round */ \
    :: d_step { LIVE(j) && cdone[j] && coin[rnd[j]] != 0 -> use_coin(j); skip } \
    /* TERMT TERM(v): honest deciders of v, and X */ \
    TERM_STEP(j, 1) \
    TERM_STEP(j, 2)

#ifdef AUX_EVERY
#define AUX_ON_ACCEPT(j, b) saux[SR(j, rnd[j])] = saux[SR(j, rnd[j])] | BIT(b)
#else
/* first value only (once vals is fixed, the AUX was sent even if its record
   has been forgotten by collect) */
#define AUX_ON_ACCEPT(j, b) \
    if :: saux[SR(j, rnd[j])] == 0 && vals[j] == 0 -> saux[SR(j, rnd[j])] = BIT(b) \
       :: else -> skip fi
#endif

/* After the CONF wait, bin_values is read by nothing (only with AUX_EVERY does
   a new value still send an AUX): it is dropped then (see CONF_WAIT). */
#ifdef AUX_EVERY
#define BIN_MATTERS(j) 1
#else
#define BIN_MATTERS(j) (!cdone[j])
#endif

/* relay BVAL(b). With RELAY + 1 >= ACCEPT (the real thresholds) the own relay
   completes ACCEPT counted BVAL(b) at once, so the implementation adds b to
   bin_values in the same step, and so does the model. */
#if RELAY + 1 >= ACCEPT
#define ACCEPT_AFTER_RELAY(j, b) \
    if :: BIN_MATTERS(j) && (bin[j] & BIT(b)) == 0 -> \
          bin[j] = bin[j] | BIT(b); AUX_ON_ACCEPT(j, b); \
          printf("MSC: node %d round %d: bin_values %d, AUX sent %d\n", j, rnd[j], bin[j], \
                 saux[SR(j, rnd[j])]) \
       :: else -> skip fi
#else
#define ACCEPT_AFTER_RELAY(j, b) skip
#endif

#define BVAL_STEPS(j, b) \
    :: d_step { LIVE(j) && (sbv[SR(j, rnd[j])] & BIT(b)) == 0 && BV_COUNT(j, b) >= RELAY -> \
           sbv[SR(j, rnd[j])] = sbv[SR(j, rnd[j])] | BIT(b); \
           printf("MSC: node %d round %d: relays BVAL(%d), offered by %d of 4\n", j, rnd[j], b, \
                  BV_COUNT(j, b)); \
           ACCEPT_AFTER_RELAY(j, b); skip } \
    :: d_step { LIVE(j) && BIN_MATTERS(j) && (bin[j] & BIT(b)) == 0 && BV_COUNT(j, b) >= ACCEPT -> \
           bin[j] = bin[j] | BIT(b); AUX_ON_ACCEPT(j, b); \
           printf("MSC: node %d round %d: BVAL(%d) offered by %d of 4: bin_values %d, AUX sent %d\n", \
                  j, rnd[j], b, BV_COUNT(j, b), bin[j], saux[SR(j, rnd[j])]); skip }

#ifdef CONF_BIN
#define CONF_CONTENT(j) bin[j]
#else
#define CONF_CONTENT(j) vals[j]
#endif

#define AUX_WAIT(j, V) \
    :: d_step { LIVE(j) && vals[j] == 0 && bin[j] != 0 && (V & ~bin[j]) == 0 -> \
           aux_achievable(j); \
           if :: (tach & BIT(V - 1)) != 0 -> \
                 vals[j] = V; sconf[SR(j, rnd[j])] = CONF_CONTENT(j); \
                 printf("MSC: node %d round %d: vals %d, CONF(%d)\n", j, rnd[j], V, \
                        sconf[SR(j, rnd[j])]); \
                 collect() \
              :: else -> skip fi; skip }

/* The CONF wait ends with decision set V. The first node to get here in a round
   also draws the coin, c = 0 or 1 (the first share may leave now; drawing it
   any later would only tell the adversary less). */
#define CONF_WAIT(j, V, c) \
    :: d_step { LIVE(j) && vals[j] != 0 && !cdone[j] && (coin[rnd[j]] == 0 || c == 0) -> \
           conf_achievable(j); \
           if :: (tach & BIT(V - 1)) != 0 -> \
                 cdone[j] = 1; cvals[j] = V; \
                 if :: !BIN_MATTERS(j) -> bin[j] = 0 :: else -> skip fi; \
                 printf("MSC: node %d round %d: CONF wait ends, decision set %d\n", j, rnd[j], V); \
                 if :: coin[rnd[j]] == 0 -> \
                       coin[rnd[j]] = BIT(c); \
                       printf("MSC: the coin of round %d is %d\n", rnd[j], c) \
                    :: else -> skip fi; \
                 collect() \
              :: else -> skip fi; skip }

#define TERM_STEP(j, v) \
    :: d_step { LIVE(j) && (sterm[0] == v) + (sterm[1] == v) + (sterm[2] == v) + 1 >= TERMT -> \
           printf("MSC: node %d takes %d TERM(%d)\n", j, TERMT, v - 1); \
           tdv = v; decide(j, tdv); skip }

init {
    /* Inputs up to symmetry: the three honest nodes are treated alike and so are
       the two values (the coin is drawn both ways), so (0,0,0) stands for (1,1,1)
       and (0,0,1) for every mixed case. -DALL_INPUTS tries all eight. */
#ifdef ALL_INPUTS
    if :: inp[0] = 0 :: inp[0] = 1 fi;
    if :: inp[1] = 0 :: inp[1] = 1 fi;
#endif
    if :: inp[2] = 0 :: inp[2] = 1 fi;
    d_step {
        printf("MSC: inputs %d %d %d (nodes 0-2; node 3 is Byzantine and offers whatever a\n",
               inp[0], inp[1], inp[2]);
        printf("MSC:   step needs; sets are masks: 1 = {0}, 2 = {1}, 3 = {0,1})\n");
        inputs = BIT(inp[0]) | BIT(inp[1]) | BIT(inp[2]);
        est[0] = 2;
        est[1] = 2;
        est[2] = 2;
        pend[0] = 1;
        pend[1] = 1;
        pend[2] = 1
    };
    /* A run may stop anywhere: every node decided or stopped at the bound, or
       everybody waits for messages that never come. */
end:
    do
    STEPS(0)
    STEPS(1)
    STEPS(2)
    od
}
