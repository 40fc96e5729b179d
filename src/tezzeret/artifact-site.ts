/**
 * The artifact header's `site`: what a module was compiled for, enough to rebuild it through
 * Karn — the `SeedSiteDescriptor` fields a family reads, enums by name (docs/artifacts.md).
 * `outputShape` and `convWiden` appear only where the site has them, so other artifacts'
 * bytes are as before.
 */
import { create } from '@bufbuild/protobuf';
import { z } from 'zod';
import {
  BlockActivation,
  ConvWidenPathSchema,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  SquareWindowSchema,
  WindowPadding,
  type ConvWidenPath,
  type SeedSiteDescriptor,
  type SquareWindow,
} from '../leyline/index.js';

const PADDINGS = ['SAME', 'VALID'] as const;
const ACTIVATIONS = ['LINEAR', 'RELU', 'TANH', 'SIGMOID'] as const;

/** A `SquareWindow` in a header: padding by name. */
export interface ArtifactWindow {
  readonly size: number;
  readonly stride: number;
  readonly padding: (typeof PADDINGS)[number];
}

/** A `ConvWidenPath` in a header: enums by name, unset windows left out. */
export interface ArtifactConvWiden {
  readonly conv: ArtifactWindow;
  readonly activation: (typeof ACTIVATIONS)[number];
  readonly pool?: ArtifactWindow;
  readonly nextConv?: ArtifactWindow;
}

/** The header's `site`; `kind` is the `SeedSiteKind` name (`DENSE`, `CONV`, `WIDEN`). */
export interface ArtifactSite {
  readonly kind: string;
  readonly shape: readonly number[];
  /** Only where the site has one (WIDEN: the next weighted block's pre-activation shape). */
  readonly outputShape?: readonly number[];
  /** Only for a WIDEN site on a conv block: the path its new channels take. */
  readonly convWiden?: ArtifactConvWiden;
}

const dims = z.array(z.number().int().nonnegative());
const positive = z.number().int().min(1);
const WindowSchema = z.strictObject({ size: positive, stride: positive, padding: z.enum(PADDINGS) });

/** Schema of {@link ArtifactSite} (strict, as the whole header). */
export const ArtifactSiteSchema = z.strictObject({
  kind: z.string().refine((k) => typeof (SeedSiteKind as unknown as Record<string, unknown>)[k] === 'number', 'unknown SeedSiteKind'),
  shape: dims.min(1),
  outputShape: dims.min(1).optional(),
  convWiden: z
    .strictObject({ conv: WindowSchema, activation: z.enum(ACTIVATIONS), pool: WindowSchema.optional(), nextConv: WindowSchema.optional() })
    .optional(),
});

/** `kind` of a header: the `SeedSiteKind` name. */
function kindName(kind: SeedSiteKind): string | undefined {
  return (SeedSiteKind as unknown as Record<number, string>)[kind];
}

function windowOf(window: SquareWindow): ArtifactWindow {
  const padding = WindowPadding[window.padding] as ArtifactWindow['padding'];
  return { size: window.size, stride: window.stride, padding };
}

function convWidenOf(path: ConvWidenPath): ArtifactConvWiden {
  return {
    conv: windowOf(path.conv ?? create(SquareWindowSchema)),
    activation: BlockActivation[path.activation] as ArtifactConvWiden['activation'],
    ...(path.pool === undefined ? {} : { pool: windowOf(path.pool) }),
    ...(path.nextConv === undefined ? {} : { nextConv: windowOf(path.nextConv) }),
  };
}

/** The header form of `site`; `undefined` when its kind has no name. */
export function artifactSiteOf(site: SeedSiteDescriptor): ArtifactSite | undefined {
  const kind = kindName(site.kind);
  if (kind === undefined) return undefined;
  return {
    kind,
    shape: [...site.shape],
    ...(site.outputShape.length > 0 ? { outputShape: [...site.outputShape] } : {}),
    ...(site.convWiden === undefined ? {} : { convWiden: convWidenOf(site.convWiden) }),
  };
}

function squareWindow(window: ArtifactWindow): SquareWindow {
  return create(SquareWindowSchema, { size: window.size, stride: window.stride, padding: WindowPadding[window.padding] });
}

/** The site descriptor a header's `site` describes, under `siteId`. */
export function siteOfArtifact(site: ArtifactSite, siteId: string): SeedSiteDescriptor {
  const path = site.convWiden;
  return create(SeedSiteDescriptorSchema, {
    siteId,
    kind: (SeedSiteKind as unknown as Record<string, SeedSiteKind>)[site.kind] as SeedSiteKind,
    shape: [...site.shape],
    outputShape: [...(site.outputShape ?? [])],
    ...(path === undefined
      ? {}
      : {
          convWiden: create(ConvWidenPathSchema, {
            conv: squareWindow(path.conv),
            activation: BlockActivation[path.activation],
            ...(path.pool === undefined ? {} : { pool: squareWindow(path.pool) }),
            ...(path.nextConv === undefined ? {} : { nextConv: squareWindow(path.nextConv) }),
          }),
        }),
  });
}
