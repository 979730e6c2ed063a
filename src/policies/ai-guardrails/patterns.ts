/**
 * Built-in prompt-injection phrasings (RE2 syntax, compiled case-insensitive). Each is a family of
 * phrasings widely published as jailbreak / injection prompts (OWASP Top 10 for LLM Applications,
 * LLM01 Prompt Injection; the "DAN" prompts), written as a precise rule so a near-miss passes:
 *
 * - ignore-previous-instructions: a verb of dismissal (ignore, disregard, forget, skip, override,
 *   bypass, drop), up to three filler words (all, the, your…), a word placing the target before or
 *   above (previous, prior, above, earlier, original, initial, system…), and a noun naming
 *   instructions (instructions, prompt, rules, directions, guidelines, commands, constraints…).
 *   Also "ignore the instructions above / so far" and "forget everything above". "Please ignore
 *   the previous typo" passes: a typo is not an instruction.
 * - role-override: "you are (now) DAN" (DAN, STAN, DUDE in capitals — "you are now Dan's manager"
 *   passes), "do anything now", "you are now in developer mode", "you are now an unrestricted /
 *   unfiltered / uncensored / jailbroken …", "enable/enter/activate DAN/jailbreak/god mode".
 *   "How do I enable developer mode on Android?" passes.
 * - reveal-system-prompt: a verb of disclosure (reveal, print, repeat, output, disclose, leak,
 *   dump, recite) before "your/the (full, original…) system prompt / system message / initial
 *   instructions / hidden prompt"; the softer verbs (show, display, tell me, give me, what is/are)
 *   only with "your". Also "repeat the words above". "What is a system prompt?" passes.
 * - no-restrictions: "pretend / act as if / imagine (that) you have no restrictions / rules /
 *   filters / guidelines / limitations / content policy". "Pretend you are a pirate" passes.
 * - chat-template-tokens: chat-template control tokens typed into text, which try to open a new
 *   system turn: <|im_start|>, <|im_end|>, <|system|>, <|endoftext|>, [INST], [/INST], <<SYS>>.
 */

export interface BuiltinPattern {
  readonly id: string;
  readonly pattern: string;
}

const VERB = '(?:ignore|disregard|forget|skip|override|bypass|drop)';
const FILLER = '(?:(?:all|any|every|each|of|the|your|my|these|those|such)\\s+){0,3}';
const BEFORE = '(?:previous|prior|preceding|above|earlier|former|foregoing|original|initial|system|developer|existing)';
const NOUN = '(?:instructions?|prompts?|rules?|directions?|directives?|guidelines?|guidance|commands?|constraints?|programming)';
const SECRET_PROMPT = '(?:system\\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret)\\s+(?:prompt|instructions?)|pre-?prompt)';
const ADJ = '(?:(?:full|entire|complete|exact|original|initial|hidden|secret|verbatim|whole)\\s+){0,2}';

export const BUILTIN_INJECTION: readonly BuiltinPattern[] = Object.freeze([
  {
    id: 'ignore-previous-instructions',
    pattern: [
      `\\b${VERB}\\s+${FILLER}${BEFORE}\\s+${NOUN}\\b`,
      `\\b${VERB}\\s+(?:(?:all|any|every|the|your|these|those)\\s+){0,2}${NOUN}\\s+(?:above|before\\s+this|so\\s+far|you\\s+(?:were|have\\s+been)\\s+given)\\b`,
      `\\b(?:ignore|disregard|forget)\\s+(?:all\\s+|everything\\s+)+(?:above|before\\s+this|you\\s+(?:were|have\\s+been)\\s+told)\\b`,
    ].join('|'),
  },
  {
    id: 'role-override',
    pattern: [
      '\\byou\\s+are\\s+(?:now\\s+)?(?:going\\s+to\\s+(?:act|be)\\s+(?:as\\s+)?)?(?-i:DAN|STAN|DUDE)\\b',
      '\\bdo\\s+anything\\s+now\\b',
      '\\byou\\s+are\\s+now\\s+(?:in\\s+)?(?:developer|god|jailbreak|DAN)\\s+mode\\b',
      '\\byou\\s+are\\s+now\\s+(?:an?\\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken)\\b',
      '\\b(?:enable|enter|activate)\\s+(?:DAN|god|jailbreak)\\s+mode\\b',
    ].join('|'),
  },
  {
    id: 'reveal-system-prompt',
    pattern: [
      `\\b(?:reveal|print|repeat|output|disclose|leak|dump|recite)\\s+(?:me\\s+)?(?:your|the)\\s+${ADJ}${SECRET_PROMPT}\\b`,
      `\\b(?:show|display|tell|give|what\\s+(?:is|are|was|were))\\s+(?:me\\s+)?your\\s+${ADJ}${SECRET_PROMPT}\\b`,
      '\\brepeat\\s+(?:all\\s+)?(?:of\\s+)?(?:the\\s+)?(?:words|text)\\s+above\\b',
    ].join('|'),
  },
  {
    id: 'no-restrictions',
    pattern:
      '\\b(?:pretend|act\\s+as\\s+if|imagine|behave\\s+as\\s+if)\\s+(?:that\\s+)?you\\s+(?:have|had|are\\s+under|were\\s+under)\\s+no\\s+(?:restrictions|rules|filters|guidelines|limitations|limits|content\\s+polic(?:y|ies)|ethical\\s+guidelines)\\b',
  },
  {
    id: 'chat-template-tokens',
    pattern: '<\\|(?:im_start|im_end|system|endoftext)\\|>|\\[/?INST\\]|<</?SYS>>',
  },
]);
